//! A form generated from a task's payload JSON Schema, and the payload read back from it.
//!
//! Each field is named by its path in the payload as the runtime names a bad field
//! (`image.url`), so an error the task's payload type reports lands at its field. Strings,
//! numbers, integers, booleans and enumerations get their own inputs, nested objects a
//! fieldset; anything else (arrays, maps, unions) a JSON text area.

use std::collections::BTreeMap;

use maud::{Markup, html};
use serde_json::{Map, Value};

/// What kind of input a schema becomes.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    Choice(Vec<Value>),
    Object(Vec<Field>),
    Json,
}

/// One input of the form.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    /// Its key in the object holding it.
    key: String,
    /// Its path in the payload, which is also the input's name.
    path: String,
    kind: Kind,
    required: bool,
    description: Option<String>,
    default: Option<Value>,
}

/// The form of a payload schema: its top-level fields (a schema that is not an object
/// becomes one JSON field for the whole payload, at path `.`).
pub(super) struct SchemaForm {
    fields: Vec<Field>,
}

/// Values a person typed, by path, and the error shown at each.
pub(super) type Typed = BTreeMap<String, String>;

impl SchemaForm {
    pub fn new(schema: &Value) -> Self {
        let root = Root(schema);
        let fields = match root.object_fields(schema, "") {
            Some(fields) => fields,
            None => vec![Field {
                key: String::new(),
                path: ".".to_owned(),
                kind: Kind::Json,
                required: true,
                description: None,
                default: None,
            }],
        };
        SchemaForm { fields }
    }

    /// The inputs, filled with `typed` (or each field's default), each with its error from
    /// `errors`.
    pub fn render(&self, typed: &Typed, errors: &Typed) -> Markup {
        html! { @for field in &self.fields { (render_field(field, typed, errors)) } }
    }

    /// The payload the form's values make, or the errors by path.
    pub fn read(&self, typed: &Typed) -> Result<Value, Typed> {
        let mut errors = Typed::new();
        let payload = read_fields(&self.fields, typed, &mut errors);
        match self.fields.as_slice() {
            [only] if only.path == "." => {
                let text = typed.get(".").map_or("", String::as_str);
                match serde_json::from_str(if text.trim().is_empty() { "null" } else { text }) {
                    Ok(value) => Ok(value),
                    Err(error) => Err(Typed::from([(".".to_owned(), format!("not JSON: {error}"))])),
                }
            }
            _ if errors.is_empty() => Ok(Value::Object(payload)),
            _ => Err(errors),
        }
    }
}

/// The whole schema, for its `$defs`.
struct Root<'a>(&'a Value);

impl Root<'_> {
    /// `schema` with a `$ref` followed, and `Option`'s `anyOf [T, null]` read as `T`.
    fn resolve<'s>(&'s self, schema: &'s Value) -> (&'s Value, bool) {
        let mut schema = schema;
        let mut nullable = false;
        for _ in 0..16 {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let name = reference
                    .strip_prefix("#/$defs/")
                    .or_else(|| reference.strip_prefix("#/definitions/"));
                let target = name.and_then(|name| {
                    self.0
                        .get("$defs")
                        .or_else(|| self.0.get("definitions"))
                        .and_then(|defs| defs.get(name))
                });
                match target {
                    Some(target) => schema = target,
                    None => break,
                }
                continue;
            }
            let union = schema.get("anyOf").or_else(|| schema.get("oneOf"));
            if let Some(Value::Array(options)) = union {
                let concrete: Vec<&Value> = options.iter().filter(|option| !is_null(option)).collect();
                if concrete.len() == 1 && concrete.len() < options.len() {
                    nullable = true;
                    schema = concrete[0];
                    continue;
                }
            }
            break;
        }
        (schema, nullable)
    }

    /// The fields of an object schema, or `None` for a schema that is not a plain object.
    fn object_fields(&self, schema: &Value, prefix: &str) -> Option<Vec<Field>> {
        let (schema, _) = self.resolve(schema);
        let properties = schema.get("properties")?.as_object()?;
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let fields = properties
            .iter()
            .map(|(key, property)| {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                let (resolved, nullable) = self.resolve(property);
                Field {
                    kind: self.kind(resolved, &path),
                    required: required.contains(&key.as_str()) && !nullable,
                    description: text(property, "description").or_else(|| text(resolved, "description")),
                    default: property
                        .get("default")
                        .or_else(|| resolved.get("default"))
                        .cloned(),
                    key: key.clone(),
                    path,
                }
            })
            .collect();
        Some(fields)
    }

    fn kind(&self, schema: &Value, path: &str) -> Kind {
        if let Some(Value::Array(values)) = schema.get("enum") {
            return Kind::Choice(values.iter().filter(|value| !value.is_null()).cloned().collect());
        }
        if let Some(Value::Array(options)) = schema.get("oneOf") {
            let constants: Option<Vec<Value>> = options
                .iter()
                .map(|option| option.get("const").cloned())
                .collect();
            if let Some(constants) = constants {
                return Kind::Choice(constants);
            }
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(single)) => vec![single.as_str()],
            Some(Value::Array(many)) => many
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ => Vec::new(),
        };
        match types.as_slice() {
            ["string"] => Kind::Text,
            ["integer"] => Kind::Integer,
            ["number"] => Kind::Number,
            ["boolean"] => Kind::Boolean,
            ["object"] => match self.object_fields(schema, path) {
                Some(fields)
                    if schema
                        .get("additionalProperties")
                        .is_none_or(|extra| extra == false) =>
                {
                    Kind::Object(fields)
                }
                _ => Kind::Json,
            },
            _ => Kind::Json,
        }
    }
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

fn text(schema: &Value, key: &str) -> Option<String> {
    schema.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A value as an input shows it: strings bare, anything else as JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn render_field(field: &Field, typed: &Typed, errors: &Typed) -> Markup {
    let value = typed
        .get(&field.path)
        .cloned()
        .or_else(|| field.default.as_ref().map(shown));
    let error = errors.get(&field.path);
    let id = format!("field-{}", field.path);
    let label = if field.path == "." {
        "payload (JSON)"
    } else {
        field.key.as_str()
    };
    html! {
        @if let Kind::Object(fields) = &field.kind {
            fieldset data-path=(field.path) {
                legend { (label) @if field.required { " *" } }
                @if let Some(description) = &field.description { p.muted { (description) } }
                @for inner in fields { (render_field(inner, typed, errors)) }
            }
        } @else {
            div.field data-path=(field.path) {
                label for=(id) { (label) @if field.required { " *" } }
                @match &field.kind {
                    Kind::Text => input id=(id) type="text" name=(field.path) value=[value.as_deref()] required[field.required];
                    Kind::Integer => input id=(id) type="number" step="1" name=(field.path) value=[value.as_deref()] required[field.required];
                    Kind::Number => input id=(id) type="number" step="any" name=(field.path) value=[value.as_deref()] required[field.required];
                    Kind::Boolean => input id=(id) type="checkbox" name=(field.path) value="true" checked[value.as_deref() == Some("true")];
                    Kind::Choice(choices) => select id=(id) name=(field.path) required[field.required] {
                        @if !field.required { option value="" { "—" } }
                        @for choice in choices {
                            option value=(shown(choice)) selected[value.as_deref() == Some(shown(choice).as_str())] { (shown(choice)) }
                        }
                    },
                    Kind::Object(_) | Kind::Json => textarea id=(id) name=(field.path) rows="4" placeholder="JSON" required[field.required] { (value.unwrap_or_default()) },
                }
                @if let Some(description) = &field.description { small.muted { (description) } }
                @if let Some(error) = error { p.problem.field-error { (error) } }
            }
        }
    }
}

fn read_fields(fields: &[Field], typed: &Typed, errors: &mut Typed) -> Map<String, Value> {
    let mut object = Map::new();
    for field in fields {
        if let Kind::Object(inner) = &field.kind {
            let value = read_fields(inner, typed, errors);
            if field.required || !value.is_empty() {
                object.insert(field.key.clone(), Value::Object(value));
            }
            continue;
        }
        let raw = typed.get(&field.path).map_or("", |value| value.trim());
        if let Kind::Boolean = field.kind {
            object.insert(field.key.clone(), Value::Bool(raw == "true"));
            continue;
        }
        if raw.is_empty() {
            if field.required {
                errors.insert(field.path.clone(), "required".to_owned());
            }
            continue;
        }
        let value = match &field.kind {
            Kind::Text => Ok(Value::String(raw.to_owned())),
            Kind::Integer => raw
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("`{raw}` is not a whole number")),
            Kind::Number => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("`{raw}` is not a number")),
            Kind::Choice(choices) => choices
                .iter()
                .find(|choice| shown(choice) == raw)
                .cloned()
                .ok_or_else(|| format!("`{raw}` is not one of the choices")),
            Kind::Json | Kind::Object(_) | Kind::Boolean => {
                serde_json::from_str(raw).map_err(|error| format!("not JSON: {error}"))
            }
        };
        match value {
            Ok(value) => {
                object.insert(field.key.clone(), value);
            }
            Err(error) => {
                errors.insert(field.path.clone(), error);
            }
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["width", "image", "mode"],
            "properties": {
                "width": { "type": "integer", "description": "Pixels" },
                "ratio": { "type": ["number", "null"] },
                "mode": { "$ref": "#/$defs/Mode" },
                "sharp": { "type": "boolean", "default": true },
                "image": { "$ref": "#/$defs/Image" },
                "tags": { "type": "array", "items": { "type": "string" } },
                "note": { "anyOf": [{ "$ref": "#/$defs/Note" }, { "type": "null" }] }
            },
            "$defs": {
                "Mode": { "type": "string", "enum": ["fit", "fill"] },
                "Image": { "type": "object", "required": ["url"], "properties": { "url": { "type": "string" } } },
                "Note": { "type": "object", "properties": { "text": { "type": "string" } } }
            }
        })
    }

    fn typed(pairs: &[(&str, &str)]) -> Typed {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn each_type_gets_its_input_and_nested_objects_a_fieldset() {
        let form = SchemaForm::new(&schema());
        let html = form.render(&Typed::new(), &Typed::new()).into_string();
        assert!(html.contains(r#"type="number" step="1" name="width""#), "{html}");
        assert!(
            html.contains(r#"type="number" step="any" name="ratio""#),
            "{html}"
        );
        assert!(
            html.contains(r#"<select id="field-mode" name="mode" required>"#),
            "{html}"
        );
        assert!(html.contains(r#"<option value="fill">"#), "{html}");
        assert!(
            html.contains(r#"name="sharp" value="true" checked"#),
            "the default: {html}"
        );
        assert!(html.contains(r#"<fieldset data-path="image">"#), "{html}");
        assert!(html.contains(r#"name="image.url""#), "{html}");
        assert!(
            html.contains(r#"<textarea id="field-tags" name="tags""#),
            "{html}"
        );
        assert!(html.contains(r#"name="note.text""#), "{html}");
        assert!(html.contains("Pixels"));
    }

    #[test]
    fn values_are_read_back_typed_and_errors_land_at_their_field() {
        let form = SchemaForm::new(&schema());
        let payload = form
            .read(&typed(&[
                ("width", "640"),
                ("ratio", "1.5"),
                ("mode", "fill"),
                ("image.url", "https://x.test/a.png"),
                ("tags", r#"["a","b"]"#),
            ]))
            .expect("a payload");
        assert_eq!(
            payload,
            json!({ "width": 640, "ratio": 1.5, "mode": "fill", "sharp": false,
                    "image": { "url": "https://x.test/a.png" }, "tags": ["a", "b"] })
        );
        let errors = form
            .read(&typed(&[("width", "wide"), ("mode", "fill"), ("tags", "[")]))
            .expect_err("bad values");
        assert_eq!(errors["width"], "`wide` is not a whole number");
        assert_eq!(errors["image.url"], "required");
        assert!(errors["tags"].starts_with("not JSON"));
        let html = form.render(&typed(&[("width", "wide")]), &errors).into_string();
        assert!(html.contains(r#"value="wide""#), "what was typed stays: {html}");
        assert!(html.contains("`wide` is not a whole number"));
    }

    #[test]
    fn a_schema_that_is_not_an_object_is_one_json_field() {
        let form = SchemaForm::new(&json!({ "type": "array", "items": { "type": "integer" } }));
        assert_eq!(form.read(&typed(&[(".", "[1, 2]")])), Ok(json!([1, 2])));
        assert!(form.read(&typed(&[(".", "[1,")])).is_err());
    }
}
