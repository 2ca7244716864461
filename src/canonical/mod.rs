//! Canonical JSON: sorted keys, no insignificant white space.
//!
//! `serde_json::Value` keeps object keys in a `BTreeMap`, so serialising a
//! value compactly is canonical for everything ratchet hashes: the same value
//! always gives the same bytes. Floats print in their shortest round-trip form.
//!
//! [`strict`] is the other half: reading JSON so that a key given twice is
//! an error, never "the last one wins".

pub mod strict;

use serde::Serialize;

/// Serialises `value` to canonical JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Going through `Value` sorts the keys of structs and maps alike.
    let value = serde_json::to_value(value).expect("ratchet's own types always serialise to JSON");
    serde_json::to_vec(&value).expect("a JSON value always serialises")
}

/// Serialises `value` to a canonical JSON string.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    String::from_utf8(to_vec(value)).expect("serde_json writes UTF-8")
}

/// blake3 of the canonical JSON of `value`, as lower-case hex.
pub fn hash<T: Serialize + ?Sized>(value: &T) -> String {
    blake3::hash(&to_vec(value)).to_hex().to_string()
}

/// A JSON value's kind, for messages: `a number`, `null`.
pub fn kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [1, 2], "c": "x"}});
        assert_eq!(to_string(&v), r#"{"a":{"c":"x","d":[1,2]},"b":1}"#);
    }

    #[test]
    fn structs_are_sorted_too() {
        #[derive(Serialize)]
        struct S {
            z: u8,
            a: u8,
        }
        assert_eq!(to_string(&S { z: 1, a: 2 }), r#"{"a":2,"z":1}"#);
    }
}
