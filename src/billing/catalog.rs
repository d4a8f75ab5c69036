//! The plan catalog: plain data read from a TOML file (`plans/*.toml`), validated once at start-up.
//! Errors name the file, the plan and the field, so a broken catalog is fixed in one look.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

/// Which of the three billing models the catalog describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Plans include actions per tier; beyond them, prepaid credits.
    HybridCredits,
    /// Plans cap seats and messages.
    SeatLimits,
    /// Plans unlock features.
    FeatureTiers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }
}

/// How much of a meter a plan includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Count(u64),
    Unlimited,
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(Limit::Count(n)),
            Raw::Word(w) if w == "unlimited" => Ok(Limit::Unlimited),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "expected a number or \"unlimited\", found \"{w}\""
            ))),
        }
    }
}

/// What a plan costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Price {
    Free,
    Recurring {
        cents: i64,
        interval: Interval,
        lookup_key: String,
    },
    /// Sold by contacting sales (no self-serve checkout).
    ContactSales,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub key: String,
    pub name: String,
    pub price: Price,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, Limit>,
}

impl Plan {
    pub fn is_paid(&self) -> bool {
        matches!(self.price, Price::Recurring { .. })
    }

    pub fn lookup_key(&self) -> Option<&str> {
        match &self.price {
            Price::Recurring { lookup_key, .. } => Some(lookup_key),
            _ => None,
        }
    }

    pub fn cents(&self) -> i64 {
        match self.price {
            Price::Recurring { cents, .. } => cents,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub key: String,
    pub name: String,
    pub weight_millicredits: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    pub key: String,
    pub name: String,
}

/// What a gauge's current count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gauge {
    /// The product sets it (`PUT /api/v1/gauges/{meter}`): agents, projects, ...
    Api,
    /// The organization's member count, kept by the portal itself (seats).
    Members,
}

/// A meter of the seat and feature models. Without `gauge` it is a sum per period (messages);
/// with it, a current count whose plan limit holds at every moment (agents, users).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meter {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub gauge: Option<Gauge>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditPack {
    pub lookup_key: String,
    pub name: String,
    pub credits: i64,
    pub price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub model: Model,
    pub currency: String,
    pub trial_days: u32,
    pub free_plan: String,
    pub tiers: Vec<Tier>,
    pub meters: Vec<Meter>,
    pub features: Vec<Named>,
    pub credit_pack: Option<CreditPack>,
    /// Overage actions allowed past the credits before actions are refused (the hybrid model).
    pub soft_limit_actions: u32,
    pub plans: Vec<Plan>,
}

impl Catalog {
    pub fn plan(&self, key: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.key == key)
    }

    pub fn free(&self) -> &Plan {
        // Validation guarantees the free plan exists; the first plan is a safe fallback.
        self.plan(&self.free_plan).unwrap_or(&self.plans[0])
    }

    pub fn plan_for_lookup_key(&self, lookup_key: &str) -> Option<&Plan> {
        self.plans
            .iter()
            .find(|p| p.lookup_key() == Some(lookup_key))
    }

    /// The meters plans limit: tiers in the hybrid model, declared meters otherwise.
    pub fn meter_keys(&self) -> Vec<&str> {
        match self.model {
            Model::HybridCredits => self.tiers.iter().map(|t| t.key.as_str()).collect(),
            _ => self.meters.iter().map(|m| m.key.as_str()).collect(),
        }
    }

    /// How a meter is counted when it is a gauge; `None` for sums per period and unknown keys.
    pub fn gauge(&self, key: &str) -> Option<Gauge> {
        self.meters
            .iter()
            .find(|m| m.key == key)
            .and_then(|m| m.gauge)
    }

    /// The gauge meters, in catalog order.
    pub fn gauges(&self) -> impl Iterator<Item = (&Meter, Gauge)> {
        self.meters
            .iter()
            .filter_map(|m| m.gauge.map(|gauge| (m, gauge)))
    }

    /// The meter that counts the organization's members (seats), if the catalog has one.
    pub fn members_meter(&self) -> Option<&Meter> {
        self.gauges()
            .find(|(_, g)| *g == Gauge::Members)
            .map(|(m, _)| m)
    }

    /// The name of a feature key, or the key itself.
    pub fn feature_name<'a>(&'a self, key: &'a str) -> &'a str {
        self.features
            .iter()
            .find(|f| f.key == key)
            .map_or(key, |f| f.name.as_str())
    }

    pub fn meter_name<'a>(&'a self, key: &'a str) -> &'a str {
        self.tiers
            .iter()
            .map(|t| (t.key.as_str(), t.name.as_str()))
            .chain(
                self.meters
                    .iter()
                    .map(|m| (m.key.as_str(), m.name.as_str())),
            )
            .find(|(k, _)| *k == key)
            .map_or(key, |(_, name)| name)
    }
}

/// Where a catalog is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    pub file: String,
    /// For TOML syntax and shape errors: the 1-based line.
    pub line: Option<usize>,
    pub plan: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(plan) = &self.plan {
            write!(f, "plan \"{plan}\": ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for CatalogError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    model: Model,
    currency: String,
    #[serde(default)]
    trial_days: u32,
    free_plan: String,
    #[serde(default)]
    tiers: Vec<Tier>,
    #[serde(default)]
    meters: Vec<Meter>,
    #[serde(default)]
    features: Vec<Named>,
    credit_pack: Option<CreditPack>,
    #[serde(default = "default_soft_limit")]
    soft_limit_actions: u32,
    #[serde(default)]
    plans: Vec<RawPlan>,
}

/// DESIGN.md: "default 10 actions over".
fn default_soft_limit() -> u32 {
    10
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    key: String,
    name: String,
    price_cents: Option<i64>,
    interval: Option<Interval>,
    lookup_key: Option<String>,
    #[serde(default)]
    contact_sales: bool,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    limits: BTreeMap<String, Limit>,
}

/// Parses and validates a catalog. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Catalog, CatalogError> {
    let raw: RawCatalog = toml::from_str(text).map_err(|e| CatalogError {
        file: file.to_owned(),
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1),
        plan: None,
        field: None,
        message: e.message().trim().to_owned(),
    })?;
    Validator { file }.catalog(raw)
}

struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn error(&self, plan: Option<&str>, field: &str, message: impl Into<String>) -> CatalogError {
        CatalogError {
            file: self.file.to_owned(),
            line: None,
            plan: plan.map(str::to_owned),
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    fn catalog(&self, raw: RawCatalog) -> Result<Catalog, CatalogError> {
        if raw.currency.len() != 3 || !raw.currency.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(self.error(
                None,
                "currency",
                "must be a three-letter lowercase ISO code such as \"usd\"",
            ));
        }
        if raw.trial_days > 365 {
            return Err(self.error(None, "trial_days", "must be between 0 and 365"));
        }
        if raw.soft_limit_actions > 10_000 {
            return Err(self.error(None, "soft_limit_actions", "must be between 0 and 10000"));
        }
        if raw.plans.is_empty() {
            return Err(self.error(None, "plans", "the catalog needs at least one plan"));
        }
        self.unique_keys("tiers", raw.tiers.iter().map(|t| t.key.as_str()))?;
        self.unique_keys("meters", raw.meters.iter().map(|m| m.key.as_str()))?;
        self.unique_keys("features", raw.features.iter().map(|f| f.key.as_str()))?;
        match raw.model {
            Model::HybridCredits => {
                if raw.tiers.is_empty() {
                    return Err(self.error(
                        None,
                        "tiers",
                        "the hybrid_credits model needs at least one tier",
                    ));
                }
                if let Some(t) = raw.tiers.iter().find(|t| t.weight_millicredits <= 0) {
                    return Err(self.error(
                        None,
                        "tiers.weight_millicredits",
                        format!("tier \"{}\" must weigh more than 0", t.key),
                    ));
                }
                let pack = raw.credit_pack.as_ref().ok_or_else(|| {
                    self.error(
                        None,
                        "credit_pack",
                        "the hybrid_credits model needs a credit pack",
                    )
                })?;
                if pack.credits <= 0 || pack.price_cents <= 0 || pack.lookup_key.is_empty() {
                    return Err(self.error(
                        None,
                        "credit_pack",
                        "credits, price_cents and lookup_key must all be set and positive",
                    ));
                }
            }
            Model::SeatLimits | Model::FeatureTiers => {
                if raw.meters.is_empty() {
                    return Err(self.error(None, "meters", "this model needs at least one meter"));
                }
            }
        }
        // Gauges are limits of the meters models; the credits model's tiers are sums per period.
        if let Some(m) = raw.meters.iter().find(|m| m.gauge.is_some()) {
            if raw.model == Model::HybridCredits {
                return Err(self.error(
                    None,
                    "meters.gauge",
                    format!(
                        "meter \"{}\": gauges belong to the seat_limits and feature_tiers models",
                        m.key
                    ),
                ));
            }
        }
        let members: Vec<&str> = raw
            .meters
            .iter()
            .filter(|m| m.gauge == Some(Gauge::Members))
            .map(|m| m.key.as_str())
            .collect();
        if members.len() > 1 {
            return Err(self.error(
                None,
                "meters.gauge",
                format!(
                    "only one meter can count the members; found {}",
                    members.join(", ")
                ),
            ));
        }
        let meter_keys: BTreeSet<&str> = match raw.model {
            Model::HybridCredits => raw.tiers.iter().map(|t| t.key.as_str()).collect(),
            _ => raw.meters.iter().map(|m| m.key.as_str()).collect(),
        };
        let feature_keys: BTreeSet<&str> = raw.features.iter().map(|f| f.key.as_str()).collect();
        let mut seen = BTreeSet::new();
        let mut lookup_keys = BTreeSet::new();
        let mut plans = Vec::with_capacity(raw.plans.len());
        for plan in &raw.plans {
            let key = plan.key.as_str();
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(self.error(
                    Some(key),
                    "key",
                    "use lowercase letters, digits and underscores",
                ));
            }
            if !seen.insert(key) {
                return Err(self.error(Some(key), "key", "another plan has the same key"));
            }
            if plan.name.trim().is_empty() {
                return Err(self.error(Some(key), "name", "must not be empty"));
            }
            let price = self.price(plan)?;
            if let Price::Recurring { lookup_key, .. } = &price {
                if !lookup_keys.insert(lookup_key.clone()) {
                    return Err(self.error(
                        Some(key),
                        "lookup_key",
                        "another plan uses the same lookup key",
                    ));
                }
            }
            for feature in &plan.features {
                if !feature_keys.contains(feature.as_str()) {
                    return Err(self.error(
                        Some(key),
                        "features",
                        format!("\"{feature}\" is not declared under [[features]]"),
                    ));
                }
            }
            for meter in plan.limits.keys() {
                if !meter_keys.contains(meter.as_str()) {
                    return Err(self.error(
                        Some(key),
                        "limits",
                        format!("\"{meter}\" is not a declared meter or tier"),
                    ));
                }
            }
            if let Some(missing) = meter_keys.iter().find(|m| !plan.limits.contains_key(**m)) {
                return Err(self.error(Some(key), "limits", format!("no limit for \"{missing}\"")));
            }
            plans.push(Plan {
                key: plan.key.clone(),
                name: plan.name.clone(),
                price,
                features: plan.features.clone(),
                limits: plan.limits.clone(),
            });
        }
        match plans.iter().find(|p| p.key == raw.free_plan) {
            None => {
                return Err(self.error(
                    None,
                    "free_plan",
                    format!("no plan has the key \"{}\"", raw.free_plan),
                ))
            }
            Some(p) if p.price != Price::Free => {
                return Err(self.error(Some(&p.key), "price_cents", "the free plan must cost 0"));
            }
            Some(_) => {}
        }
        if let Some(pack) = &raw.credit_pack {
            if lookup_keys.contains(&pack.lookup_key) {
                return Err(self.error(
                    None,
                    "credit_pack.lookup_key",
                    "a plan uses the same lookup key",
                ));
            }
        }
        Ok(Catalog {
            model: raw.model,
            currency: raw.currency,
            trial_days: raw.trial_days,
            free_plan: raw.free_plan,
            tiers: raw.tiers,
            meters: raw.meters,
            features: raw.features,
            credit_pack: raw.credit_pack,
            soft_limit_actions: raw.soft_limit_actions,
            plans,
        })
    }

    fn price(&self, plan: &RawPlan) -> Result<Price, CatalogError> {
        let key = Some(plan.key.as_str());
        if plan.contact_sales {
            if plan.price_cents.is_some() || plan.interval.is_some() || plan.lookup_key.is_some() {
                return Err(self.error(
                    key,
                    "contact_sales",
                    "a contact-sales plan has no price_cents, interval or lookup_key",
                ));
            }
            return Ok(Price::ContactSales);
        }
        match plan.price_cents {
            None => Err(self.error(key, "price_cents", "missing (or set contact_sales = true)")),
            Some(cents) if cents < 0 => Err(self.error(key, "price_cents", "must not be negative")),
            Some(0) => {
                if plan.interval.is_some() || plan.lookup_key.is_some() {
                    return Err(self.error(
                        key,
                        "lookup_key",
                        "a free plan is not sold through Stripe; remove interval and lookup_key",
                    ));
                }
                Ok(Price::Free)
            }
            Some(cents) => {
                let interval = plan.interval.ok_or_else(|| {
                    self.error(
                        key,
                        "interval",
                        "a paid plan needs interval = \"month\" or \"year\"",
                    )
                })?;
                let lookup_key = plan
                    .lookup_key
                    .clone()
                    .filter(|k| !k.trim().is_empty())
                    .ok_or_else(|| {
                        self.error(
                            key,
                            "lookup_key",
                            "a paid plan needs the lookup key of its Stripe price",
                        )
                    })?;
                Ok(Price::Recurring {
                    cents,
                    interval,
                    lookup_key,
                })
            }
        }
    }

    fn unique_keys<'k>(
        &self,
        field: &str,
        keys: impl Iterator<Item = &'k str>,
    ) -> Result<(), CatalogError> {
        let mut seen = BTreeSet::new();
        for key in keys {
            if !seen.insert(key) {
                return Err(self.error(None, field, format!("\"{key}\" is declared twice")));
            }
        }
        Ok(())
    }
}

/// A catalog shipped in `plans/` (such as `hybrid.toml`), for unit tests anywhere in the crate.
#[cfg(test)]
pub fn shipped(name: &str) -> Catalog {
    let path = format!("{}/plans/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("catalog file");
    parse(&path, &text).unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> Catalog {
        shipped(name)
    }

    #[test]
    fn the_default_hybrid_catalog_matches_the_design() {
        let catalog = load("hybrid.toml");
        assert_eq!(catalog.model, Model::HybridCredits);
        assert_eq!(catalog.trial_days, 7);
        let prices: Vec<(&str, i64)> = catalog
            .plans
            .iter()
            .map(|p| (p.key.as_str(), p.cents()))
            .collect();
        assert_eq!(
            prices,
            vec![("free", 0), ("starter", 999), ("pro", 9900), ("max", 49999)]
        );
        let pro = catalog.plan("pro").expect("pro");
        assert_eq!(pro.limits.get("xl"), Some(&Limit::Count(160)));
        assert_eq!(pro.lookup_key(), Some("pro_monthly"));
        let weights: Vec<i64> = catalog
            .tiers
            .iter()
            .map(|t| t.weight_millicredits)
            .collect();
        assert_eq!(weights, vec![1000, 2500, 5000, 15000]);
        let pack = catalog.credit_pack.clone().expect("pack");
        assert_eq!((pack.credits, pack.price_cents), (500, 2000));
        assert_eq!(
            catalog
                .plan_for_lookup_key("max_monthly")
                .map(|p| p.key.as_str()),
            Some("max")
        );
    }

    #[test]
    fn the_example_catalogs_load() {
        let seats = load("seats.toml");
        assert_eq!(
            seats.plan("enterprise").map(|p| &p.price),
            Some(&Price::ContactSales)
        );
        assert_eq!(
            seats
                .plan("enterprise")
                .and_then(|p| p.limits.get("agents")),
            Some(&Limit::Unlimited)
        );
        let features = load("features.toml");
        assert_eq!(features.free().key, "starter");
        assert!(features
            .plan("scale")
            .expect("scale")
            .features
            .contains(&"white_label".to_owned()));
    }

    #[test]
    fn gauges_are_declared_on_meters_and_checked() {
        let seats = load("seats.toml");
        assert_eq!(seats.gauge("agents"), Some(Gauge::Api));
        assert_eq!(seats.gauge("users"), Some(Gauge::Members));
        assert_eq!(seats.gauge("messages"), None);
        assert_eq!(seats.members_meter().map(|m| m.key.as_str()), Some("users"));
        assert_eq!(seats.gauges().count(), 2);
        let path = format!("{}/plans/seats.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("catalog");
        let two_members = text.replacen("gauge = \"api\"", "gauge = \"members\"", 1);
        let error = parse("plans/seats.toml", &two_members)
            .expect_err("two member gauges")
            .to_string();
        assert_eq!(
            error,
            "plans/seats.toml: field `meters.gauge`: only one meter can count the members; found agents, users"
        );
        let unknown_kind = text.replacen("gauge = \"api\"", "gauge = \"sum\"", 1);
        let error = parse("plans/seats.toml", &unknown_kind)
            .expect_err("unknown gauge kind")
            .to_string();
        assert!(
            error.starts_with("plans/seats.toml:") && error.contains("unknown variant `sum`"),
            "{error}"
        );
        let hybrid = format!(
            "{}\n[[meters]]\nkey = \"seats\"\nname = \"Seats\"\ngauge = \"members\"\n",
            std::fs::read_to_string(format!("{}/plans/hybrid.toml", env!("CARGO_MANIFEST_DIR")))
                .expect("catalog")
        );
        let error = parse("plans/hybrid.toml", &hybrid)
            .expect_err("gauge in the credits model")
            .to_string();
        assert!(
            error.contains("field `meters.gauge`: meter \"seats\""),
            "{error}"
        );
    }

    fn broken(replace: &str, with: &str) -> String {
        let path = format!("{}/plans/hybrid.toml", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("catalog");
        assert!(text.contains(replace), "fixture text {replace:?} not found");
        let text = text.replacen(replace, with, 1);
        parse("plans/hybrid.toml", &text)
            .expect_err("broken catalog")
            .to_string()
    }

    #[test]
    fn errors_name_the_file_the_plan_and_the_field() {
        assert_eq!(
            broken("lookup_key = \"pro_monthly\"\n", ""),
            "plans/hybrid.toml: plan \"pro\": field `lookup_key`: a paid plan needs the lookup key of its Stripe price"
        );
        assert_eq!(
            broken("price_cents = 9900", "price_cents = -1"),
            "plans/hybrid.toml: plan \"pro\": field `price_cents`: must not be negative"
        );
        assert!(broken("xl = 160 }", "xxl = 160 }")
            .starts_with("plans/hybrid.toml: plan \"pro\": field `limits`:"));
        assert!(broken("key = \"max\"", "key = \"pro\"")
            .contains("plan \"pro\": field `key`: another plan has the same key"));
        assert!(
            broken("free_plan = \"free\"", "free_plan = \"gratis\"").contains("field `free_plan`")
        );
        assert!(broken("currency = \"usd\"", "currency = \"USD\"").contains("field `currency`"));
        let unknown = broken("name = \"Pro\"", "name = \"Pro\"\nprise_cents = 5");
        assert!(
            unknown.starts_with("plans/hybrid.toml:53: unknown field `prise_cents`"),
            "{unknown}"
        );
    }
}
