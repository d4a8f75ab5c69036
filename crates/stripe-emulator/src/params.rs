//! Stripe's request encoding: `application/x-www-form-urlencoded` bodies (and query strings) with
//! bracket notation (`metadata[org_id]=7`, `line_items[0][price]=price_1`, `expand[]=customer`),
//! parsed into a tree, and [`Params`], which hands values to an endpoint and refuses whatever it
//! did not ask for, as Stripe does ("Received unknown parameter: ...").

use std::collections::BTreeMap;

use super::error::StripeError;

/// One parsed parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// `key[a]=..&key[b]=..`, and lists (`key[0]`, `key[]`) before [`Value::List`] conversion.
    Map(BTreeMap<String, Value>),
    List(Vec<Value>),
}

/// Parses `a=1&b[c]=2&d[]=x&d[]=y&e[0][f]=3` into a tree. Maps whose keys are all indexes
/// become lists in index order.
pub fn parse(encoded: &str) -> Result<BTreeMap<String, Value>, StripeError> {
    let mut root: BTreeMap<String, Value> = BTreeMap::new();
    let mut push_counters: BTreeMap<String, usize> = BTreeMap::new();
    for (key, value) in form_urlencoded_pairs(encoded) {
        let (head, segments) = split_key(&key).ok_or_else(|| {
            StripeError::invalid_request(format!("Invalid parameter name: {key}"), Some(&key))
        })?;
        let mut path: Vec<String> = Vec::with_capacity(segments.len());
        for (i, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                // `key[]`: the next index of this list.
                let counter_key = format!(
                    "{head}{}",
                    path.iter().map(|p| format!("[{p}]")).collect::<String>()
                );
                let next = push_counters.entry(counter_key).or_insert(0);
                path.push(next.to_string());
                *next += 1;
                if i + 1 != segments.len() {
                    return Err(StripeError::invalid_request(
                        format!("Invalid array parameter: {key}"),
                        Some(&key),
                    ));
                }
            } else {
                path.push(segment.clone());
            }
        }
        insert(&mut root, &head, &path, value, &key)?;
    }
    Ok(root.into_iter().map(|(k, v)| (k, listify(v))).collect())
}

fn form_urlencoded_pairs(encoded: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(encoded).unwrap_or_default()
}

/// `a[b][c]` into `("a", ["b", "c"])`.
fn split_key(key: &str) -> Option<(String, Vec<String>)> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut segments = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        segments.push(inner[..close].to_owned());
        rest = &inner[close + 1..];
    }
    Some((head.to_owned(), segments))
}

fn insert(
    root: &mut BTreeMap<String, Value>,
    head: &str,
    path: &[String],
    value: String,
    full_key: &str,
) -> Result<(), StripeError> {
    let conflict = || {
        StripeError::invalid_request(
            format!("Invalid value for {full_key}: conflicting parameter shapes"),
            Some(full_key),
        )
    };
    if path.is_empty() {
        root.insert(head.to_owned(), Value::Str(value));
        return Ok(());
    }
    let mut node = root
        .entry(head.to_owned())
        .or_insert_with(|| Value::Map(BTreeMap::new()));
    for (i, segment) in path.iter().enumerate() {
        let Value::Map(map) = node else {
            return Err(conflict());
        };
        if i + 1 == path.len() {
            map.insert(segment.clone(), Value::Str(value));
            return Ok(());
        }
        node = map
            .entry(segment.clone())
            .or_insert_with(|| Value::Map(BTreeMap::new()));
    }
    Ok(())
}

/// Maps keyed `0..n` become lists, recursively.
fn listify(value: Value) -> Value {
    match value {
        Value::Map(map) => {
            let all_indexes = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if all_indexes {
                let mut entries: Vec<(usize, Value)> = map
                    .into_iter()
                    .filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, listify(v))))
                    .collect();
                entries.sort_by_key(|(i, _)| *i);
                Value::List(entries.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Map(map.into_iter().map(|(k, v)| (k, listify(v))).collect())
            }
        }
        other => other,
    }
}

/// The parameters of one request (or one nested object of it). Endpoints take what they know;
/// [`Params::finish`] refuses anything left over.
#[derive(Debug)]
pub struct Params {
    prefix: String,
    map: BTreeMap<String, Value>,
}

impl Params {
    pub fn new(map: BTreeMap<String, Value>) -> Self {
        Self {
            prefix: String::new(),
            map,
        }
    }

    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}[{key}]", self.prefix)
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Whether `key` was given as plain text (`key=v`) rather than an object (`key[a]=v`).
    pub fn is_text(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(Value::Str(_)))
    }

    pub fn string(&mut self, key: &str) -> Result<Option<String>, StripeError> {
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(key, "a string")),
        }
    }

    pub fn required_string(&mut self, key: &str) -> Result<String, StripeError> {
        self.string(key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| StripeError::missing_param(&self.name(key)))
    }

    /// An optional URL parameter, which must be an absolute http(s) URL (Stripe's `url_invalid`).
    pub fn url(&mut self, key: &str) -> Result<Option<String>, StripeError> {
        let value = self.string(key)?;
        if let Some(url) = &value {
            crate::urls::check_param(url, &self.name(key))?;
        }
        Ok(value)
    }

    /// A required URL parameter, checked as [`Params::url`].
    pub fn required_url(&mut self, key: &str) -> Result<String, StripeError> {
        let url = self.required_string(key)?;
        crate::urls::check_param(&url, &self.name(key))?;
        Ok(url)
    }

    pub fn integer(&mut self, key: &str) -> Result<Option<i64>, StripeError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| self.invalid(key, "an integer")),
        }
    }

    pub fn boolean(&mut self, key: &str) -> Result<Option<bool>, StripeError> {
        match self.string(key)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(self.invalid(key, "a boolean")),
        }
    }

    /// One of `allowed`, as Stripe's enums are.
    pub fn one_of(&mut self, key: &str, allowed: &[&str]) -> Result<Option<String>, StripeError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) if allowed.contains(&s.as_str()) => Ok(Some(s)),
            Some(s) => Err(StripeError::invalid_request(
                format!(
                    "Invalid {}: must be one of {} (got '{s}')",
                    self.name(key),
                    allowed.join(", ")
                ),
                Some(&self.name(key)),
            )),
        }
    }

    /// A nested object, itself to be finished by the caller.
    pub fn object(&mut self, key: &str) -> Result<Option<Params>, StripeError> {
        let name = self.name(key);
        match self.map.remove(key) {
            None => Ok(None),
            // `key=` (empty string) is how Stripe clients unset an object.
            Some(Value::Str(s)) if s.is_empty() => Ok(None),
            Some(Value::Map(map)) => Ok(Some(Params { prefix: name, map })),
            Some(_) => Err(self.invalid(key, "an object")),
        }
    }

    /// A list of nested objects (`key[0][a]=..`).
    pub fn objects(&mut self, key: &str) -> Result<Vec<Params>, StripeError> {
        let name = self.name(key);
        match self.map.remove(key) {
            None => Ok(Vec::new()),
            Some(Value::Str(s)) if s.is_empty() => Ok(Vec::new()),
            Some(Value::List(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Map(map) => Ok(Params {
                        prefix: format!("{name}[{i}]"),
                        map,
                    }),
                    _ => Err(StripeError::invalid_request(
                        format!("Invalid {name}[{i}]: must be an object"),
                        Some(&name),
                    )),
                })
                .collect(),
            Some(_) => Err(self.invalid(key, "an array")),
        }
    }

    /// A list of strings (`key[]=a&key[]=b` or `key[0]=a`).
    pub fn strings(&mut self, key: &str) -> Result<Vec<String>, StripeError> {
        match self.map.remove(key) {
            None => Ok(Vec::new()),
            Some(Value::Str(s)) if s.is_empty() => Ok(Vec::new()),
            Some(Value::List(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::Str(s) => Ok(s),
                    _ => Err(self.invalid(key, "an array of strings")),
                })
                .collect(),
            Some(_) => Err(self.invalid(key, "an array")),
        }
    }

    /// `metadata[k]=v` pairs; an empty value deletes the key on update (the caller decides).
    pub fn metadata(&mut self, key: &str) -> Result<Option<BTreeMap<String, String>>, StripeError> {
        let name = self.name(key);
        match self.map.remove(key) {
            None => Ok(None),
            Some(Value::Str(s)) if s.is_empty() => Ok(Some(BTreeMap::new())),
            Some(Value::Map(map)) => map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::Str(s) => Ok((k, s)),
                    _ => Err(StripeError::invalid_request(
                        format!("Invalid {name}[{k}]: metadata values must be strings"),
                        Some(&name),
                    )),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(self.invalid(key, "an object")),
        }
    }

    /// Refuses the request if any parameter was not taken.
    pub fn finish(self) -> Result<(), StripeError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(key) => {
                let name = self.name(key);
                Err(StripeError::invalid_request(
                    format!("Received unknown parameter: {name}"),
                    Some(&name),
                )
                .with_code("parameter_unknown"))
            }
        }
    }

    fn invalid(&self, key: &str, what: &str) -> StripeError {
        let name = self.name(key);
        StripeError::invalid_request(format!("Invalid {name}: must be {what}"), Some(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Params {
        Params::new(parse(s).expect("parses"))
    }

    #[test]
    fn brackets_nest_and_indexes_make_lists() {
        let mut p = params(
            "mode=subscription&line_items[0][price]=price_a&line_items[0][quantity]=2\
             &line_items[1][price]=price_b&metadata[org_id]=42&expand[]=customer&expand[]=subscription",
        );
        assert_eq!(
            p.string("mode").expect("ok").as_deref(),
            Some("subscription")
        );
        let mut items = p.objects("line_items").expect("list");
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].string("price").expect("ok").as_deref(),
            Some("price_a")
        );
        assert_eq!(items[0].integer("quantity").expect("ok"), Some(2));
        assert_eq!(
            p.strings("expand").expect("ok"),
            vec!["customer", "subscription"]
        );
        let metadata = p.metadata("metadata").expect("ok").expect("present");
        assert_eq!(metadata.get("org_id").map(String::as_str), Some("42"));
        p.finish().expect("all taken");
    }

    #[test]
    fn unknown_parameters_are_named_with_their_full_path() {
        let mut p = params(
            "customer=cus_1&subscription_data[trial_period_days]=7&subscription_data[bogus]=1",
        );
        p.string("customer").expect("ok");
        let mut sub = p.object("subscription_data").expect("ok").expect("present");
        assert_eq!(sub.integer("trial_period_days").expect("ok"), Some(7));
        let err = sub.finish().expect_err("bogus is unknown");
        assert_eq!(err.param.as_deref(), Some("subscription_data[bogus]"));
        assert_eq!(err.code.as_deref(), Some("parameter_unknown"));
        p.finish().expect("top level is clean");
    }

    #[test]
    fn percent_encoding_and_bad_values() {
        let mut p = params(
            "success_url=https%3A%2F%2Fx.test%2Fok%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D&n=abc",
        );
        assert_eq!(
            p.string("success_url").expect("ok").as_deref(),
            Some("https://x.test/ok?session_id={CHECKOUT_SESSION_ID}")
        );
        assert!(p.integer("n").is_err());
    }
}
