//! The schema document's JSON layout: keys sorted, and a value on one line when it fits, so
//! that a diff of two kept versions shows one line per changed field or variant.

use serde_json::Value;

/// Lines are kept within this many columns when a value can be.
const WIDTH: usize = 100;
/// The document and its sections (`client`, `server`, `types`) are always laid out one entry
/// per line, however small.
const ALWAYS_OPEN: usize = 2;

pub(super) fn pretty(value: &Value) -> String {
    let mut out = String::new();
    write(&mut out, value, 0, 0);
    out.push('\n');
    out
}

/// Writes `value` at `depth`, its first line already holding `column` characters.
fn write(out: &mut String, value: &Value, depth: usize, column: usize) {
    let flat = flat(value);
    let open = match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    };
    if !open || (depth >= ALWAYS_OPEN && column + flat.len() <= WIDTH) {
        out.push_str(&flat);
        return;
    }
    let indent = "  ".repeat(depth + 1);
    match value {
        Value::Object(map) => {
            out.push_str("{\n");
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (i, (key, item)) in entries.iter().enumerate() {
                let head = format!("{indent}{}: ", string(key));
                out.push_str(&head);
                write(out, item, depth + 1, head.len());
                out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
            }
        }
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&indent);
                write(out, item, depth + 1, indent.len());
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
        }
        _ => unreachable!("only objects and arrays are opened"),
    }
    out.push_str(&"  ".repeat(depth));
    out.push(if value.is_object() { '}' } else { ']' });
}

/// `value` on one line, keys sorted: `{"required": true, "shape": "string"}`.
fn flat(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(key, item)| format!("{}: {}", string(key), flat(item)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(flat).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::String(text) => string(text),
        other => other.to_string(),
    }
}

fn string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::pretty;

    #[test]
    fn sections_open_and_small_values_stay_on_one_line() {
        let doc = json!({
            "name": "Chat",
            "types": {"Item": {"struct": {"fields": {"b": {"shape": "u8", "required": true}}}}},
            "client": {},
        });
        assert_eq!(
            pretty(&doc),
            r#"{
  "client": {},
  "name": "Chat",
  "types": {
    "Item": {"struct": {"fields": {"b": {"required": true, "shape": "u8"}}}}
  }
}
"#
        );
    }

    #[test]
    fn a_long_value_opens_until_its_parts_fit() {
        let fields: serde_json::Map<String, serde_json::Value> = (0..6)
            .map(|i| {
                (
                    format!("field_number_{i}"),
                    json!({"shape": "string", "required": true}),
                )
            })
            .collect();
        let doc = json!({"types": {"Wide": {"struct": {"fields": fields}}}});
        let text = pretty(&doc);
        assert!(text.lines().all(|line| line.len() <= 100), "{text}");
        assert!(text.contains(
            "\n          \"field_number_3\": {\"required\": true, \"shape\": \"string\"},\n"
        ));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
    }
}
