//! The config as text, read through the key table ([`super::keys`]): the check that every
//! key of a parsed file is in the table, and the normalized config text that results files
//! record (every key in table order, the keys that [`Key::in_text_at_default`] says are
//! left out at their default left out).

use super::keys::{self, Key, KEYS, SECTIONS};
use super::{Config, ConfigError};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::sync::OnceLock;

/// Reports the first key of the parsed `table` (depth-first, in key order) that is not in
/// the key table: a section, a key of a section, or a field of an inline-table key
/// (`grid.log2_c.stpe`). `grid.axes` holds config keys, checked by validation.
pub(super) fn check_known_keys(table: &toml::Table, origin: &str) -> Result<(), ConfigError> {
    let unknown = |key: String, expected: Vec<&str>| ConfigError::UnknownKey {
        origin: origin.to_string(),
        key,
        expected: expected.join(", "),
    };
    for (section, value) in table {
        if !SECTIONS.contains(&section.as_str()) {
            return Err(unknown(section.clone(), SECTIONS.to_vec()));
        }
        // A non-table where a table belongs is a type error, reported by serde.
        let toml::Value::Table(keys) = value else {
            continue;
        };
        for (name, value) in keys {
            let Some(key) = keys::find(section, name) else {
                let known = keys::keys_of(section).map(Key::short).collect();
                return Err(unknown(format!("{section}.{name}"), known));
            };
            if let (toml::Value::Table(fields), false) = (value, key.fields.is_empty()) {
                if let Some(field) = fields.keys().find(|f| !key.fields.contains(&f.as_str())) {
                    return Err(unknown(
                        format!("{}.{field}", key.name),
                        key.fields.to_vec(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether two TOML values are the same, floats bit for bit (−0.0 is not 0.0: a key at
/// −0.0 is written, as it always was).
fn same(a: &toml::Value, b: &toml::Value) -> bool {
    use toml::Value as V;
    match (a, b) {
        (V::Float(x), V::Float(y)) => x.to_bits() == y.to_bits(),
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (V::Table(x), V::Table(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        _ => a == b,
    }
}

/// `config` as a TOML table (serde; sorted by key).
fn as_table(config: &Config) -> toml::Table {
    toml::Table::try_from(config).expect("a Config always serializes to a TOML table")
}

/// The default config as a TOML table, made once.
fn defaults() -> &'static toml::Table {
    static DEFAULTS: OnceLock<toml::Table> = OnceLock::new();
    DEFAULTS.get_or_init(|| as_table(&Config::default()))
}

/// The value of the dotted key of `key` in a config `table` (`None`: omitted).
pub(super) fn value_of<'t>(table: &'t toml::Table, key: &Key) -> Option<&'t toml::Value> {
    match table.get(key.section()) {
        Some(toml::Value::Table(section)) => section.get(key.short()),
        _ => None,
    }
}

/// A value written with the fields of an inline-table key in the key's order.
struct Value<'a> {
    value: &'a toml::Value,
    fields: &'static [&'static str],
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let toml::Value::Table(table) = self.value else {
            return self.value.serialize(serializer);
        };
        if self.fields.is_empty() {
            return table.serialize(serializer);
        }
        let mut map = serializer.serialize_map(Some(table.len()))?;
        for field in self.fields {
            if let Some(v) = table.get(*field) {
                map.serialize_entry(field, v)?;
            }
        }
        map.end()
    }
}

/// The config text's tables: each section's keys, in table order.
struct Sections<'a>(Vec<(&'static str, Vec<(&'static str, Value<'a>)>)>);

impl Serialize for Sections<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Section<'b, 'a>(&'b [(&'static str, Value<'a>)]);
        impl Serialize for Section<'_, '_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, value) in self.0 {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (section, keys) in &self.0 {
            map.serialize_entry(section, &Section(keys))?;
        }
        map.end()
    }
}

/// The normalized config text: every key of [`KEYS`] with a value, in table order, except
/// those at their default that the table leaves out of the text.
pub(super) fn normalized_text(config: &Config) -> String {
    let table = as_table(config);
    let mut sections: Vec<(&'static str, Vec<(&'static str, Value)>)> =
        SECTIONS.iter().map(|s| (*s, Vec::new())).collect();
    for key in KEYS {
        let Some(value) = value_of(&table, key) else {
            continue;
        };
        let at_default = value_of(defaults(), key).is_some_and(|d| same(value, d));
        if at_default && !key.in_text_at_default {
            continue;
        }
        let (_, keys) = sections
            .iter_mut()
            .find(|(s, _)| *s == key.section())
            .expect("every key's section is in SECTIONS");
        keys.push((
            key.short(),
            Value {
                value,
                fields: key.fields,
            },
        ));
    }
    toml::to_string(&Sections(sections)).expect("a config table always serializes to TOML")
}
