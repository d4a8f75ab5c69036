//! What each figure on the metrics page means, written once: the page shows these words, and
//! the functions in `timeline`, `flows` and `figures` compute exactly this (their unit tests
//! check it on a fixed history). Pure.

/// One metric's name and definition.
pub struct Definition {
    pub term: &'static str,
    pub meaning: &'static str,
}

pub const DEFINITIONS: &[Definition] = &[
    Definition {
        term: "Day",
        meaning: "A calendar day in UTC. A fact counts on the day the portal recorded it (applied \
                  the webhook, or saw the Checkout return), not the day Stripe dated it, so every \
                  figure uses one clock.",
    },
    Definition {
        term: "MRR",
        meaning: "Monthly recurring revenue at the end of the day: for every organization whose \
                  subscription is active or past due (still in its grace period), its plan's \
                  price normalized to one month (a yearly price divided by 12, rounded to the \
                  cent), summed per currency in minor units. Trials, canceled and free plans add \
                  nothing. Discounts and taxes are not modelled.",
    },
    Definition {
        term: "ARR",
        meaning: "MRR × 12.",
    },
    Definition {
        term: "MRR movement",
        meaning: "Each change of an organization's MRR during the day: new (from nothing, for an \
                  organization that never paid), reactivated (from nothing, for one that paid \
                  before), expansion (up), contraction (down), churned (to nothing). MRR at the \
                  start plus new, expansion and reactivated, minus contraction and churned, is \
                  MRR at the end.",
    },
    Definition {
        term: "Active subscriptions",
        meaning: "Subscriptions active or past due at the end of the day, per plan; trials are \
                  counted apart.",
    },
    Definition {
        term: "Trials",
        meaning: "Started: a subscription first seen in its trial. Converted: it left the trial \
                  for active (a card was on file). Expired: it left the trial for anything else \
                  (canceled, no card). Conversion rate: converted of the trials that ended \
                  (converted + expired) in the range.",
    },
    Definition {
        term: "Logo churn",
        meaning: "Organizations whose MRR went to nothing during the range, of the organizations \
                  paying at its start.",
    },
    Definition {
        term: "Revenue churn",
        meaning: "Churned plus contraction MRR during the range, of the MRR at its start, per \
                  currency (gross: expansion does not offset it).",
    },
    Definition {
        term: "Checkout sessions",
        meaning: "Sessions the portal opened that day (plans and credit packs), and of those how \
                  many were completed and how many abandoned (expired unfinished); the rest are \
                  still open.",
    },
    Definition {
        term: "Credits",
        meaning: "Packs sold: credit packs paid that day (through Checkout or auto top-up), with \
                  their credits. Credits consumed: what the day's recorded actions took from \
                  prepaid balances (actions within the plan take nothing).",
    },
    Definition {
        term: "Net revenue",
        meaning: "Invoices seen paid that day plus credit packs paid, minus refunds made that \
                  day, per currency.",
    },
    Definition {
        term: "Webhook health",
        meaning: "Events received that day; applied (or ignored as not ours), failed (given up \
                  after retries) and still pending; success rate: applied of the settled \
                  (applied + failed); median lag: seconds from Stripe's created time to applied, \
                  over the applied events (a range shows its worst day's median).",
    },
];
