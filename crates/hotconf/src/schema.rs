//! JSON Schema validation of the merged config (cargo feature `json-schema`).
//!
//! Schema errors are located like every other problem: the JSON Schema instance path is a
//! config path, and the merged tree knows the file and line of the value there.

use std::path::Path;

use crate::error::{Error, Problem, ProblemKind, Problems, Result};
use crate::layer::Layers;
use crate::path::ConfigPath;

/// A compiled JSON Schema.
///
/// ```
/// use hotconf::schema::Schema;
/// use hotconf::source::{Defaults, Format, Source};
/// use hotconf::Pipeline;
///
/// let schema = Schema::from_json(&serde_json::json!({
///     "type": "object",
///     "properties": {"limits": {"properties": {"rpm": {"type": "integer", "minimum": 1}}}}
/// })).unwrap();
/// let sources: Vec<Box<dyn Source>> =
///     vec![Box::new(Defaults::text(Format::Toml, "[limits]\nrpm = 0\n"))];
/// let plan = Pipeline::new().schema(schema).check::<serde_json::Value>(&sources);
/// assert_eq!(plan.errors[0].to_string(), "<defaults>:2:7: limits.rpm: 0 is less than the minimum of 1");
/// ```
#[derive(Debug)]
pub struct Schema {
    validator: jsonschema::Validator,
}

impl Schema {
    /// Compiles a schema given as JSON.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] when the schema itself is invalid.
    pub fn from_json(schema: &serde_json::Value) -> Result<Self> {
        let validator = jsonschema::validator_for(schema).map_err(|e| Error::InvalidOption {
            option: "schema",
            reason: e.to_string(),
        })?;
        Ok(Self { validator })
    }

    /// Reads and compiles a JSON Schema file.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] when the file cannot be read, is not JSON, or is not a valid
    /// schema.
    pub fn from_file(path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidOption {
            option: "schema",
            reason: format!("{}: {reason}", path.display()),
        };
        let bytes = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        Self::from_json(&json)
    }

    /// Every schema violation of the merged config, each located at its value.
    pub(crate) fn check(&self, layers: &Layers) -> Problems {
        let instance = layers.to_json();
        Problems(
            self.violations(&instance)
                .into_iter()
                .map(|(path, message)| {
                    layers.locate(Problem::error(ProblemKind::Schema, message), &path)
                })
                .collect(),
        )
    }

    /// Every schema violation of a plain config value, by config path.
    pub(crate) fn violations(&self, instance: &serde_json::Value) -> Vec<(ConfigPath, String)> {
        self.validator
            .iter_errors(instance)
            .flat_map(|error| {
                let mut path = ConfigPath::root();
                for segment in error.instance_path().iter() {
                    path = match segment {
                        jsonschema::paths::LocationSegment::Property(key) => path.key(key.as_ref()),
                        jsonschema::paths::LocationSegment::Index(index) => path.index(index),
                    };
                }
                match error.kind() {
                    // A missing property is named by its full path, like a missing field.
                    jsonschema::error::ValidationErrorKind::Required {
                        property: serde_json::Value::String(name),
                    } => path = path.key(name.as_str()),
                    // An unknown key is located at the key itself, not at its table.
                    jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                        return unexpected
                            .iter()
                            .map(|name| {
                                let message =
                                    format!("`{name}` is not allowed here (additionalProperties)");
                                (path.clone().key(name.as_str()), message)
                            })
                            .collect::<Vec<_>>();
                    }
                    _ => {}
                }
                vec![(path, error.to_string())]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_key_is_located_at_the_key() {
        let schema = Schema::from_json(&serde_json::json!({
            "type": "object",
            "properties": {"limits": {"type": "object", "additionalProperties": false,
                "properties": {"rpm": {"type": "integer"}}}}
        }))
        .unwrap();
        let sources = [crate::source::Defaults::text(
            crate::source::Format::Toml,
            "[limits]\nrpm = 1\nrsp = 2\nburst = 3\n",
        )];
        let layers = Layers::load(&sources, &crate::Limits::default()).unwrap();
        let problems: Vec<String> = schema
            .check(&layers)
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "<defaults>:3:7: limits.rsp: `rsp` is not allowed here (additionalProperties)",
                "<defaults>:4:9: limits.burst: `burst` is not allowed here (additionalProperties)",
            ]
        );
    }

    #[test]
    fn invalid_schema_is_an_option_error() {
        let error = Schema::from_json(&serde_json::json!({"type": 12})).unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidOption {
                    option: "schema",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let schema = Schema::from_json(&serde_json::json!({
            "type": "object",
            "required": ["name"],
            "properties": {"routes": {"type": "array", "items": {"type": "string"}}}
        }))
        .unwrap();
        let violations = schema.violations(&serde_json::json!({"routes": ["a", 2]}));
        let paths: Vec<String> = violations.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(paths.contains(&"routes[1]".to_owned()), "{paths:?}");
        assert!(paths.contains(&"name".to_owned()), "{paths:?}");
    }
}
