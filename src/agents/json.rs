//! The JSON of signed writes: strict parsing and the canonical body in the
//! two key orders a signature may have been made over.
//!
//! Parsing is strict, so that the server and every reader see one value:
//! a key twice in one object, a number beyond ±(2^53−1) (JavaScript cannot
//! hold it exactly), a lone surrogate or trailing bytes are refused. The
//! parsed [`Json`] keeps each object's members in the order they came, which
//! JavaScript's `Object.keys` (and so the public SDK) starts its sort from.
//!
//! The canonical body is what the public SDK's `stableStringifyAgentJson`
//! prints: no white space, strings escaped as `JSON.stringify` does, numbers
//! as JavaScript prints them (RFC 8785 §3.2.2.3: `1e+21`, `1.5e-7`, `0` for
//! `-0`), and object keys sorted. The SDK sorts with `localeCompare` (ICU's
//! root collation, as Node ships it: `_a < $x < 10 < A < a_b < aB < Ab`),
//! which is not RFC 8785's code-unit order (`$x < 10 < A < Ab < _a < aB <
//! a_b`). [`canonical`] prints either; a signature is accepted over the
//! code-unit form (RFC 8785, what careful clients send) or the locale form
//! (what the SDK sends), see `signed`.
//!
//! Written by hand: `serde_json_canonicalizer` covers the code-unit order
//! only and builds a `Value` whose map forgets the member order that
//! JavaScript's stable sort keeps for keys that collate equal.

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The largest integer JavaScript holds exactly: 2^53 − 1.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A parsed JSON value that keeps each object's member order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// Every number is a double, as in JavaScript.
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

/// Which order object keys are sorted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyOrder {
    /// UTF-16 code units (RFC 8785, `Array.prototype.sort` without a comparator).
    Code,
    /// `String.prototype.localeCompare` (ICU root collation), the public SDK's.
    Locale,
}

impl KeyOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOrder::Code => "code",
            KeyOrder::Locale => "locale",
        }
    }
}

/// Why a body is not acceptable JSON.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(pub String);

/// Parses `bytes` strictly (see the module doc).
pub fn parse(bytes: &[u8]) -> Result<Json, JsonError> {
    let text = std::str::from_utf8(bytes).map_err(|e| JsonError(format!("the body is not UTF-8: {e}")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Strict::deserialize(&mut de).map_err(|e| JsonError(e.to_string()))?;
    de.end().map_err(|e| JsonError(e.to_string()))?;
    Ok(v.0)
}

impl Json {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A word for messages: `a string`, `an object`.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Num(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "an array",
            Json::Obj(_) => "an object",
        }
    }

    /// The same value as a `serde_json::Value` (whose maps sort their keys).
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Num(n) => {
                if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
                    Value::Number((*n as i64).into())
                } else {
                    serde_json::Number::from_f64(*n).map(Value::Number).unwrap_or(Value::Null)
                }
            }
            Json::Str(s) => Value::String(s.clone()),
            Json::Arr(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Obj(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_value())).collect()),
        }
    }

    /// A value built from a `serde_json::Value` (members in its map's order).
    pub fn from_value(v: &serde_json::Value) -> Json {
        use serde_json::Value;
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Num(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => Json::Str(s.clone()),
            Value::Array(a) => Json::Arr(a.iter().map(Json::from_value).collect()),
            Value::Object(m) => Json::Obj(m.iter().map(|(k, v)| (k.clone(), Json::from_value(v))).collect()),
        }
    }
}

/// The canonical JSON text of `value` with keys in `order`.
pub fn canonical(value: &Json, order: KeyOrder) -> String {
    let mut out = String::new();
    write(value, order, &mut out);
    out
}

fn write(value: &Json, order: KeyOrder, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Num(n) => out.push_str(&js_number(*n)),
        Json::Str(s) => push_string(s, out),
        Json::Arr(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, order, out);
            }
            out.push(']');
        }
        Json::Obj(members) => {
            out.push('{');
            for (i, (k, v)) in sorted(members, order).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(k, out);
                out.push(':');
                write(v, order, out);
            }
            out.push('}');
        }
    }
}

/// The members in `order`. For the locale order, the sort starts from
/// JavaScript's `Object.keys` order (array-index keys ascending, then the
/// rest as they came) and is stable, as `Array.prototype.sort` is.
fn sorted(members: &[(String, Json)], order: KeyOrder) -> Vec<(&String, &Json)> {
    let mut list: Vec<(&String, &Json)> = members.iter().map(|(k, v)| (k, v)).collect();
    match order {
        KeyOrder::Code => list.sort_by(|a, b| code_units(a.0, b.0)),
        KeyOrder::Locale => {
            list.sort_by_key(|(k, _)| array_index(k).map_or(1, |_| 0));
            let n = list.iter().filter(|(k, _)| array_index(k).is_some()).count();
            list[..n].sort_by_key(|(k, _)| array_index(k));
            list.sort_by(|a, b| COLLATOR.compare(a.0, b.0));
        }
    }
    list
}

/// Compares by UTF-16 code units, as JavaScript compares strings.
pub fn code_units(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// ICU's root collation at its default strength, as `localeCompare` uses it.
static COLLATOR: LazyLock<icu_collator::CollatorBorrowed<'static>> = LazyLock::new(|| {
    icu_collator::Collator::try_new(Default::default(), Default::default())
        .expect("the compiled root collation data is always present")
});

/// Compares as `a.localeCompare(b)` does in Node.
pub fn locale_compare(a: &str, b: &str) -> Ordering {
    COLLATOR.compare(a, b)
}

/// The number a key is, when JavaScript treats it as an array index
/// (`"0"`, `"17"`; not `"01"` or `"-1"`): such keys come first in `Object.keys`.
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u64>().ok().filter(|n| *n < u32::MAX as u64).map(|n| n as u32)
}

fn push_string(s: &str, out: &mut String) {
    // serde_json escapes exactly as JSON.stringify does: `"` `\` and the C0
    // controls (\b \t \n \f \r, else \u00xx in lower case); nothing else.
    out.push_str(&serde_json::to_string(s).expect("a string always serialises"));
}

/// A double as JavaScript's `Number.prototype.toString` prints it.
pub fn js_number(n: f64) -> String {
    if n == 0.0 {
        return "0".into();
    }
    let mut buf = ryu_js::Buffer::new();
    buf.format(n).to_string()
}

struct Strict(Json);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

fn number<E: de::Error>(v: f64) -> Result<Json, E> {
    if !v.is_finite() || v.abs() > MAX_SAFE_INTEGER {
        return Err(E::custom(format!(
            "the number {} is beyond ±(2^53−1), which JavaScript cannot hold exactly; send it as a string",
            js_number(v)
        )));
    }
    Ok(Json::Num(v))
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER as u64 {
            return Err(E::custom(format!("the integer {v} is beyond ±(2^53−1); send it as a string")));
        }
        Ok(Json::Num(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        if v > MAX_SAFE_INTEGER as u64 {
            return Err(E::custom(format!("the integer {v} is beyond ±(2^53−1); send it as a string")));
        }
        Ok(Json::Num(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        number(v)
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Arr(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out: Vec<(String, Json)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let Strict(v) = map.next_value()?;
            out.push((key, v));
        }
        Ok(Json::Obj(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_in(order: KeyOrder, keys: &[&str]) -> Vec<String> {
        let obj = Json::Obj(keys.iter().map(|k| (k.to_string(), Json::Null)).collect());
        let text = canonical(&obj, order);
        let Json::Obj(m) = parse(text.as_bytes()).unwrap() else { panic!() };
        m.into_iter().map(|(k, _)| k).collect()
    }

    /// The orders below are what Node 20 (ICU 78) prints for
    /// `keys.sort((a, b) => a.localeCompare(b))` and `keys.sort()`.
    #[test]
    fn both_orders_match_javascript() {
        let keys = [
            "a_b", "aB", "ab", "a1", "A", "_a", "a-b", "Z", "z", "botId", "bot_id", "botid", "$x", "é", "e", "f", "10",
            "9", "a.b", "AB", "Ab",
        ];
        assert_eq!(
            keys_in(KeyOrder::Locale, &keys),
            [
                "_a", "$x", "10", "9", "A", "a_b", "a-b", "a.b", "a1", "ab", "aB", "Ab", "AB", "bot_id", "botid",
                "botId", "e", "é", "f", "z", "Z"
            ]
        );
        assert_eq!(
            keys_in(KeyOrder::Code, &keys),
            [
                "$x", "10", "9", "A", "AB", "Ab", "Z", "_a", "a-b", "a.b", "a1", "aB", "a_b", "ab", "botId", "bot_id",
                "botid", "e", "f", "z", "é"
            ]
        );
    }

    #[test]
    fn code_unit_order_is_utf16_not_utf8() {
        // U+FF61 sorts after U+1F600 in UTF-8 bytes but before it in UTF-16 units.
        assert_eq!(keys_in(KeyOrder::Code, &["\u{1F600}", "\u{FF61}"]), ["\u{1F600}", "\u{FF61}"]);
        assert_eq!(code_units("\u{FF61}", "\u{1F600}"), Ordering::Greater);
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        for (text, js) in [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1.0", "1"),
            ("1e2", "100"),
            ("1.5e-7", "1.5e-7"),
            ("0.000001", "0.000001"),
            ("123456789012345680000", "123456789012345680000"),
            ("1e21", "1e+21"),
            ("0.1", "0.1"),
            ("-2.5", "-2.5"),
            ("9007199254740991", "9007199254740991"),
            ("-9007199254740991", "-9007199254740991"),
            ("4.35", "4.35"),
            ("0.30000000000000004", "0.30000000000000004"),
        ] {
            let v = parse(text.as_bytes());
            if text == "123456789012345680000" || text == "1e21" {
                assert!(v.is_err(), "{text} is beyond the safe range");
                continue;
            }
            assert_eq!(canonical(&v.unwrap(), KeyOrder::Code), js, "{text}");
        }
        assert_eq!(js_number(1e21), "1e+21");
        assert_eq!(js_number(123456789012345680000.0), "123456789012345680000");
        assert_eq!(js_number(5e-324), "5e-324");
    }

    #[test]
    fn strictness() {
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            "9007199254740992",
            "-9007199254740992",
            "1e300",
            r#""\ud800""#,
            "{} x",
            "[1,]",
            "\u{feff}{}",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse(b"\xff").is_err());
        assert!(parse(r#"[{"b":1},{"b":1}]"#.as_bytes()).is_ok());
    }

    #[test]
    fn strings_escape_as_json_stringify() {
        let v = parse(r#"{"k":"a\"b\\c\n\t\u0001\u001f\u007f é \u2028 😀 /"}"#.as_bytes()).unwrap();
        assert_eq!(canonical(&v, KeyOrder::Code), "{\"k\":\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\u{7f} é \u{2028} 😀 /\"}");
    }

    #[test]
    fn array_index_keys_come_first_before_the_stable_sort() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(keys_in(KeyOrder::Locale, &["b", "2", "10", "a"]), ["10", "2", "a", "b"]);
    }
}
