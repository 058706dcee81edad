//! Values that cross as JSON: configs read into core structs ([`from_json`]: a serde error or an
//! unknown field becomes `E_CONFIG` naming the field) and results written back ([`JsonValue`]).
//!
//! ```text
//! {"method": "foo"}          → E_CONFIG  invalid config: method: unknown variant `foo`, expected one of …
//! {"pul": {"attach": 3}}     → E_CONFIG  invalid config: pul.attach: invalid type: integer `3`, expected …
//! {"metod": "pul"}           → E_CONFIG  invalid config: metod: unknown field
//! ```
//!
//! napi reads a whole JS number above `u32::MAX` (a memory budget of 4 GiB) as a float, which an
//! integer field refuses; [`from_json`] reads every whole number up to 2^53 as an integer first.
use goldpan_core::Error as CoreError;
use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{sys, ValueType};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Reads `value` as `T`, whose `Default` serializes to every field it knows (nested structs as
/// objects), so that a key it lacks is reported rather than ignored.
pub fn from_json<T: DeserializeOwned + Serialize + Default>(mut value: Value) -> Result<T, CoreError> {
    whole_numbers(&mut value);
    let known = serde_json::to_value(T::default()).map_err(|e| CoreError::Internal(e.to_string()))?;
    if let Some(path) = unknown_field(&value, &known, "") {
        return Err(config_error(path, "unknown field".into()));
    }
    serde_json::from_value::<T>(value.clone()).map_err(|e| match bad_field::<T>(&value, &known, &[]) {
        Some((path, reason)) => config_error(path, reason),
        None => config_error("config".into(), e.to_string()),
    })
}

/// Every float of `value` that is a whole number JS represents exactly (|x| ≤ 2^53) as an integer.
fn whole_numbers(value: &mut Value) {
    const EXACT: f64 = (1u64 << 53) as f64;
    match value {
        Value::Number(n) => {
            if let Some(x) = n.as_f64().filter(|x| n.is_f64() && x.fract() == 0.0 && x.abs() <= EXACT) {
                *n = if x < 0.0 { (x as i64).into() } else { (x as u64).into() };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

fn config_error(field: String, reason: String) -> CoreError {
    CoreError::Config { field, reason }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The dotted path of the first key of `value` that `known` does not have.
fn unknown_field(value: &Value, known: &Value, prefix: &str) -> Option<String> {
    let (Value::Object(value), Value::Object(known)) = (value, known) else { return None };
    value.iter().find_map(|(key, v)| match known.get(key) {
        None => Some(join(prefix, key)),
        Some(k) => unknown_field(v, k, &join(prefix, key)),
    })
}

/// `{path[0]: {path[1]: … leaf}}`.
fn nest(path: &[&str], leaf: Value) -> Value {
    path.iter().rev().fold(leaf, |inner, key| Value::Object(Map::from_iter([(key.to_string(), inner)])))
}

/// The first field (dotted path) that `T` rejects on its own, and why: each key of the object at
/// `path` is tried alone (every other field defaulted), descending into nested structs.
fn bad_field<T: DeserializeOwned>(value: &Value, known: &Value, path: &[&str]) -> Option<(String, String)> {
    let (Value::Object(value), Value::Object(known)) = (value, known) else { return None };
    value.iter().find_map(|(key, v)| {
        let here: Vec<&str> = path.iter().copied().chain([key.as_str()]).collect();
        let err = serde_json::from_value::<T>(nest(&here, v.clone())).err()?;
        let deeper = known.get(key).and_then(|k| bad_field::<T>(v, k, &here));
        Some(deeper.unwrap_or_else(|| (here.join("."), err.to_string())))
    })
}

/// A serialized core result as a JS object (JSON numbers, strings, arrays, `null`).
pub struct JsonValue(pub Value);

impl JsonValue {
    /// `value` serialized, with `progressEvents` added.
    pub fn with_progress_events(value: &impl Serialize, progress_events: u32) -> Result<Self, CoreError> {
        let mut json = serde_json::to_value(value).map_err(|e| CoreError::Internal(format!("result to JSON: {e}")))?;
        if let Value::Object(map) = &mut json {
            map.insert("progressEvents".into(), progress_events.into());
        }
        Ok(JsonValue(json))
    }
}

impl TypeName for JsonValue {
    fn type_name() -> &'static str {
        "Record<string, unknown>"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for JsonValue {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        unsafe { Value::to_napi_value(env, val.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use goldpan_core::ntk::NtkConfig;
    use goldpan_core::sfda::AdaptConfig;
    use serde_json::json;

    fn field_of(value: Value) -> (String, String) {
        match from_json::<AdaptConfig>(value) {
            Err(CoreError::Config { field, reason }) => (field, reason),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn reads_partial_configs_with_defaults() {
        let c: AdaptConfig =
            from_json(json!({"method": "shot", "target": "mnist", "pul": {"classes": 5}, "epochs": 3})).unwrap();
        assert_eq!((c.target.as_str(), c.epochs, c.pul.classes), ("mnist", Some(3), 5));
        assert_eq!(c.pul.temperature, AdaptConfig::default().pul.temperature);
    }

    #[test]
    fn names_the_bad_field() {
        let (field, reason) = field_of(json!({"method": "foo", "target": "usps"}));
        assert_eq!(field, "method");
        assert!(reason.contains("unknown variant `foo`"), "{reason}");
        assert_eq!(field_of(json!({"target": "usps", "pul": {"attach": 3, "classes": 3}})).0, "pul.attach");
        assert_eq!(field_of(json!({"epochs": 1.5})).0, "epochs");
        assert_eq!(field_of(json!({"batchSize": -1})).0, "batchSize");
        assert_eq!(field_of(json!(7)).0, "config");
    }

    #[test]
    fn reads_whole_floats_as_integers() {
        // What napi makes of the JS number 4294967296 (above u32::MAX).
        let c: NtkConfig = from_json(json!({"memoryBudget": 4294967296.0, "n": 20.0})).unwrap();
        assert_eq!((c.memory_budget, c.n), (1 << 32, 20));
        assert_eq!(field_of(json!({"epochs": 2.5})).0, "epochs");
        assert!(from_json::<NtkConfig>(json!({"memoryBudget": -1.0})).is_err());
    }

    #[test]
    fn rejects_unknown_fields() {
        assert_eq!(field_of(json!({"metod": "pul"})), ("metod".into(), "unknown field".into()));
        assert_eq!(field_of(json!({"shot": {"clsPar": 0.3, "bogus": 1}})).0, "shot.bogus");
        // Optional fields (null by default) take any value their type allows.
        assert!(from_json::<AdaptConfig>(json!({"trainLimit": 10, "outDir": "/tmp/x"})).is_ok());
    }
}
