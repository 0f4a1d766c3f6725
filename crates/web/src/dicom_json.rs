//! The DICOM JSON model (PS3.18 Annex F) of catalog answers.
//!
//! Each attribute is `"GGGGEEEE": {"vr": "XX", "Value": [...]}`; an empty attribute has no
//! `Value`. Multi-valued strings (`\`-separated) become arrays; IS and US become numbers; a
//! person name becomes `{"Alphabetic", "Ideographic", "Phonetic"}` from its `=`-separated
//! component groups (empty groups left out), so a Chinese name stored as
//! `Wang^XiaoDong=王^小东` reads as both.

use serde_json::{Map, Value};
use yilian_store::Key;

/// One attribute's JSON: `vr` and, unless `value` is empty, `Value`.
pub fn attribute(vr: [u8; 2], value: &str) -> Value {
    let vr_text = String::from_utf8_lossy(&vr).into_owned();
    let mut obj = Map::new();
    obj.insert("vr".into(), Value::String(vr_text));
    let value = value.trim_end_matches(['\0', ' ']);
    if value.is_empty() {
        return Value::Object(obj);
    }
    let values: Vec<Value> = value
        .split('\\')
        .map(|v| match &vr {
            b"PN" => person_name(v),
            b"IS" | b"US" | b"SL" | b"UL" | b"SS" => v
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(v.trim().to_string())),
            _ => Value::String(v.trim().to_string()),
        })
        .collect();
    obj.insert("Value".into(), Value::Array(values));
    Value::Object(obj)
}

fn person_name(v: &str) -> Value {
    let mut obj = Map::new();
    for (group, text) in ["Alphabetic", "Ideographic", "Phonetic"]
        .into_iter()
        .zip(v.split('='))
    {
        let text = text.trim_end_matches('^');
        if !text.is_empty() {
            obj.insert(group.into(), Value::String(text.to_string()));
        }
    }
    Value::Object(obj)
}

/// The tag as DICOM JSON names it: 8 upper-case hex digits.
pub fn tag(group: u16, element: u16) -> String {
    format!("{group:04X}{element:04X}")
}

/// A catalog answer as one DICOM JSON object, with `extra` attributes (e.g. Retrieve URL).
pub fn dataset<'a>(
    values: impl Iterator<Item = (Key, &'a str)>,
    extra: impl IntoIterator<Item = ((u16, u16), [u8; 2], String)>,
) -> Value {
    let mut attrs: Vec<(String, Value)> = values
        .map(|(key, value)| {
            let (g, e) = key.tag();
            (tag(g, e), attribute(key.vr(), value))
        })
        .collect();
    attrs.extend(
        extra
            .into_iter()
            .map(|((g, e), vr, value)| (tag(g, e), attribute(vr, &value))),
    );
    // Attributes in tag order, as PS3.18 F.2.1 asks (whatever order the map keeps).
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(attrs.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_numbers_lists_and_empties_follow_annex_f() {
        assert_eq!(
            attribute(*b"PN", "Wang^XiaoDong=王^小东="),
            json!({"vr": "PN", "Value": [{"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东"}]})
        );
        assert_eq!(
            attribute(*b"PN", "=王^小东"),
            json!({"vr": "PN", "Value": [{"Ideographic": "王^小东"}]})
        );
        assert_eq!(attribute(*b"IS", "12"), json!({"vr": "IS", "Value": [12]}));
        assert_eq!(
            attribute(*b"CS", "CT\\MR"),
            json!({"vr": "CS", "Value": ["CT", "MR"]})
        );
        assert_eq!(attribute(*b"DA", ""), json!({"vr": "DA"}));
        assert_eq!(tag(0x0010, 0x0010), "00100010");
        let d = dataset(
            [(Key::StudyInstanceUid, "1.2.3"), (Key::PatientName, "A^B")].into_iter(),
            [(
                (0x0008, 0x1190),
                *b"UR",
                "https://r/dicomweb/studies/1.2.3".to_string(),
            )],
        );
        let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["00081190", "00100010", "0020000D"], "tag order");
    }
}
