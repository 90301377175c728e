//! JSON Schemas of the YAML formats, for editors: generated from the types the files are read
//! into ([`super::raw`]) and committed as `schema/scenario.schema.json` and
//! `schema/topology.schema.json`. A YAML file names its schema in a first-line modeline that
//! yaml-language-server reads: `# yaml-language-server: $schema=../schema/scenario.schema.json`.
//!
//! The schemas say what the deserializer accepts: unknown keys are errors, and the types
//! with hand-written `Deserialize` impls have hand-written schemas here. What `model::load`
//! checks after that (that names exist, that a rule file has exactly one kind, …) is left to
//! `harness check`. The tests regenerate both files and fail when they differ from the
//! committed ones: `HARNESS_UPDATE_SCHEMA=1 cargo test -p harness-core --lib schema` rewrites them.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use super::raw::{self, Ordered, Scalar, SelectorDef};

/// `name: value` pairs: a YAML mapping (the deserializer also refuses a name given twice).
impl<T: JsonSchema> JsonSchema for Ordered<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Ordered_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<T>(),
        })
    }
}

/// A sysctl value: YAML `1` or `"1"` alike (a whole number that fits in an i64, or a string).
impl JsonSchema for Scalar {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "a sysctl value: a number or a string, e.g. `1`",
            "type": ["integer", "string"],
            "minimum": i64::MIN,
            "maximum": i64::MAX,
        })
    }
}

/// `flows:` in an expectation: a name or a list of flow numbers.
impl JsonSchema for SelectorDef {
    fn schema_name() -> Cow<'static, str> {
        "Selector".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`all`, `tcp`, `udp`, a traffic name, or a list of flow numbers and traffic names such as [1, 3] or [web, dns]",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "anyOf": [generator.subschema_for::<u32>(), { "type": "string" }] } },
            ],
        })
    }
}

/// serde_yaml_ng reads any YAML scalar into a `String`: `name: 1` is the name `1`, `to: ~`
/// the node `~`. So a string field's schema takes every scalar, as the loader does (what it
/// names is checked later, by `harness check`). Walks the fields' schemas — definitions,
/// properties, items, map values — and not `anyOf` branches: a selector is a string or a list,
/// not a number.
fn scalar_strings(schema: &mut serde_json::Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let string = serde_json::json!("string");
    let optional_string = serde_json::json!(["string", "null"]);
    if !obj.contains_key("enum")
        && obj
            .get("type")
            .is_some_and(|t| *t == string || *t == optional_string)
    {
        obj.insert(
            "type".into(),
            serde_json::json!(["string", "number", "boolean", "null"]),
        );
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = obj.get_mut(key) {
            scalar_strings(sub);
        }
    }
    for key in ["definitions", "properties"] {
        if let Some(map) = obj.get_mut(key).and_then(|m| m.as_object_mut()) {
            map.values_mut().for_each(scalar_strings);
        }
    }
}

fn generate<T: JsonSchema>(title: &str, description: &str) -> serde_json::Value {
    let mut schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>();
    schema.insert("title".into(), title.into());
    schema.insert("description".into(), description.into());
    let mut value = schema.to_value();
    scalar_strings(&mut value);
    value
}

/// The JSON Schema of a scenario file (`scenarios/**/*.yaml`).
pub fn scenario() -> serde_json::Value {
    generate::<raw::Scenario>(
        "harness scenario",
        "A topology, the rules to install, the traffic and the expectations. Unknown keys are errors; paths are relative to this file.",
    )
}

/// The JSON Schema of a topology file (`topologies/*.yaml`).
pub fn topology() -> serde_json::Value {
    generate::<raw::Topology>(
        "harness topology",
        "A lab of network namespaces joined by veth pairs, and the router under test. Unknown keys are errors.",
    )
}

/// The committed file's text for a schema: pretty JSON, one final newline.
pub fn text(schema: &serde_json::Value) -> String {
    serde_json::to_string_pretty(schema).expect("a schema is JSON") + "\n"
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use rstest::rstest;

    use super::*;
    use crate::model::repo_path;

    const REGENERATE: &str = "HARNESS_UPDATE_SCHEMA=1 cargo test -p harness-core --lib schema";

    fn committed(kind: &str) -> PathBuf {
        repo_path(&format!("schema/{kind}.schema.json"))
    }

    fn generated(kind: &str) -> serde_json::Value {
        match kind {
            "scenario" => scenario(),
            "topology" => topology(),
            _ => unreachable!("no schema `{kind}`"),
        }
    }

    fn validator(kind: &str) -> jsonschema::Validator {
        let path = committed(kind);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}; write it: {REGENERATE}", path.display()));
        let schema: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", path.display()))
    }

    /// The YAML file as JSON, as an editor's language server sees it.
    fn as_json(file: &Path) -> Result<serde_json::Value, String> {
        let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
        serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())
    }

    /// Why `file` does not pass the committed schema, if it does not.
    fn violations(v: &jsonschema::Validator, file: &Path) -> Option<String> {
        let json = match as_json(file) {
            Ok(j) => j,
            Err(e) => return Some(format!("not YAML: {e}")),
        };
        let errors: Vec<String> = v
            .iter_errors(&json)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }

    fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("a readable folder").flatten() {
            let p = e.path();
            if p.is_dir() {
                yaml_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }

    fn files_under(rel: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        yaml_files(&repo_path(rel), &mut out);
        out.sort();
        assert!(!out.is_empty(), "no YAML files under {rel}");
        out
    }

    #[rstest]
    #[case::scenario("scenario")]
    #[case::topology("topology")]
    fn committed_schema_is_generated_from_the_types(#[case] kind: &str) {
        let path = committed(kind);
        let want = text(&generated(kind));
        if std::env::var_os("HARNESS_UPDATE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().expect("schema/")).expect("mkdir schema/");
            std::fs::write(&path, &want).expect("writing the schema");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} differs from the schema of the types in harness-core/src/model/raw.rs; \
             regenerate it with `{REGENERATE}` and commit it",
            path.display()
        );
    }

    #[rstest]
    #[case::scenarios("scenarios", "scenario")]
    #[case::topologies("topologies", "topology")]
    fn every_file_in_the_repository_passes(#[case] dir: &str, #[case] kind: &str) {
        let v = validator(kind);
        let bad: Vec<String> = files_under(dir)
            .iter()
            .filter_map(|f| violations(&v, f).map(|why| format!("{}: {why}", f.display())))
            .collect();
        assert!(
            bad.is_empty(),
            "rejected by schema/{kind}.schema.json:\n{}",
            bad.join("\n")
        );
    }

    /// The schema accepts exactly what the deserializer accepts: on every file of the
    /// repository and every bad-input fixture (those that fail later, in `model::load`, pass both).
    #[rstest]
    #[case::scenarios("scenarios", "scenario")]
    #[case::topologies("topologies", "topology")]
    #[case::bad_scenarios("harness/tests/fixtures/bad", "scenario")]
    #[case::bad_topologies("harness/tests/fixtures/bad/topo", "topology")]
    #[case::cleanup_fixtures("harness/tests/fixtures/cleanup", "scenario")]
    fn schema_and_deserializer_agree(#[case] dir: &str, #[case] kind: &str) {
        let v = validator(kind);
        let mut files = files_under(dir);
        if kind == "scenario" {
            // The fixtures' topologies, in a folder of their own.
            files.retain(|f| !f.components().any(|c| c.as_os_str() == "topo"));
        }
        let mut disagree = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("readable");
            let read = match kind {
                "scenario" => serde_yaml_ng::from_str::<raw::Scenario>(&text).map(drop),
                _ => serde_yaml_ng::from_str::<raw::Topology>(&text).map(drop),
            };
            let schema = violations(&v, &f);
            if read.is_ok() != schema.is_none() {
                disagree.push(format!(
                    "{}: deserializer {}, schema {}",
                    f.display(),
                    read.map_or_else(|e| format!("rejects it ({e})"), |()| "accepts it".into()),
                    schema.map_or_else(|| "accepts it".into(), |w| format!("rejects it ({w})")),
                ));
            }
        }
        assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    }

    /// `base` with its top-level keys replaced by those of `patch`, as JSON.
    fn patched(base: &str, patch: &str) -> serde_json::Value {
        let mut json = as_json(&repo_path(base)).expect("the base file");
        let patch: serde_json::Value = serde_yaml_ng::from_str(patch).expect("YAML");
        for (k, val) in patch.as_object().expect("a mapping") {
            json[k] = val.clone();
        }
        json
    }

    /// A real file with one key misspelt fails; with the key spelt right, it passes.
    #[rstest]
    #[case::scenario_top_level("scenario", "trafic: []\n", "trafic", "traffic")]
    #[case::expectation("scenario", "expect: [{ flows: all, vai: wan1 }]\n", "vai", "via")]
    #[case::traffic(
        "scenario",
        "traffic: [{ proto: tcp, from: a, to: b, port: 80, flow: 2 }]\n",
        "flow",
        "flows"
    )]
    #[case::rule_file(
        "scenario",
        "rules: { r: { files: [{ iptable: f }] } }\n",
        "iptable",
        "iptables"
    )]
    #[case::topology_node("topology", "nodes: { saturn: { route: [] } }\n", "route", "routes")]
    #[case::topology_router(
        "topology",
        "router: { node: jupiter, uplinks: [wan1], weight: {} }\n",
        "weight",
        "weights"
    )]
    fn an_unknown_key_is_rejected(
        #[case] kind: &str,
        #[case] patch: &str,
        #[case] wrong: &str,
        #[case] right: &str,
    ) {
        let base = match kind {
            "scenario" => "scenarios/dual-isp.yaml",
            _ => "topologies/jupiter.yaml",
        };
        let v = validator(kind);
        assert!(
            !v.is_valid(&patched(base, patch)),
            "schema/{kind}.schema.json accepts the unknown key `{wrong}`: {patch}"
        );
        let fixed = patch.replacen(wrong, right, 1);
        assert!(
            v.is_valid(&patched(base, &fixed)),
            "schema/{kind}.schema.json rejects {fixed}"
        );
    }

    /// Values of the wrong type, as the deserializer takes them (YAML 1.2: `yes` is a string).
    #[rstest]
    #[case::name_number("traffic: [{ name: 1, proto: tcp, from: a, to: b, port: 80 }]")]
    #[case::name_bool("traffic: [{ name: true, proto: tcp, from: a, to: b, port: 80 }]")]
    #[case::name_float("traffic: [{ name: 1.5, proto: tcp, from: a, to: b, port: 80 }]")]
    #[case::from_null("traffic: [{ proto: tcp, from: ~, to: b, port: 80 }]")]
    #[case::from_list("traffic: [{ proto: tcp, from: [a], to: b, port: 80 }]")]
    #[case::from_mapping("traffic: [{ proto: tcp, from: { a: 1 }, to: b, port: 80 }]")]
    #[case::sequence_numbers("expect: [{ sequence: [1, 2] }]")]
    #[case::source_number("expect: [{ source: { wan1: 1 } }]")]
    #[case::port_string("traffic: [{ proto: tcp, from: a, to: b, port: '80' }]")]
    #[case::port_too_big("traffic: [{ proto: tcp, from: a, to: b, port: 65536 }]")]
    #[case::proto_unknown("traffic: [{ proto: icmp, from: a, to: b, port: 80 }]")]
    #[case::flows_negative("traffic: [{ proto: tcp, from: a, to: b, port: 80, flows: -1 }]")]
    #[case::flows_null("traffic: [{ proto: tcp, from: a, to: b, port: 80, flows: ~ }]")]
    #[case::completes_yes("expect: [{ completes: yes }]")]
    #[case::completes_null("expect: [{ completes: ~ }]")]
    #[case::selector_name("expect: [{ flows: web, completes: true }]")]
    #[case::selector_ids("expect: [{ flows: [1, 3], completes: true }]")]
    #[case::selector_bad_id("expect: [{ flows: [1, two], completes: true }]")]
    #[case::selector_mapping("expect: [{ flows: { a: 1 }, completes: true }]")]
    #[case::selector_number("expect: [{ flows: 1, completes: true }]")]
    #[case::selector_bool("expect: [{ flows: true, completes: true }]")]
    #[case::selector_null("expect: [{ flows: ~, completes: true }]")]
    #[case::mark_string("expect: [{ mark: { wan1: one } }]")]
    #[case::tables_null("rules: { r: { tables: ~, files: [] } }")]
    #[case::traffic_null("traffic: ~")]
    #[case::expect_failure_null("expect_failure: ~")]
    #[case::break_flows("expect_failure: { reason: r, breaks: [{ expectation: e, flows: [2] }] }")]
    fn schema_and_deserializer_agree_on_types(#[case] patch: &str) {
        let json = patched("scenarios/dual-isp.yaml", patch);
        let yaml = serde_yaml_ng::to_string(&json).expect("YAML");
        let read = serde_yaml_ng::from_str::<raw::Scenario>(&yaml);
        assert_eq!(
            read.is_ok(),
            validator("scenario").is_valid(&json),
            "{patch}: deserializer {read:?}"
        );
    }

    #[rstest]
    #[case::sysctl_number("nodes: { n: { sysctls: { net.ipv4.ip_forward: 1 } } }")]
    #[case::sysctl_string("nodes: { n: { sysctls: { net.ipv4.ip_forward: '1' } } }")]
    #[case::sysctl_bool("nodes: { n: { sysctls: { net.ipv4.ip_forward: true } } }")]
    #[case::sysctl_float("nodes: { n: { sysctls: { net.ipv4.ip_forward: 1.5 } } }")]
    #[case::node_empty("nodes: { n: {} }")]
    #[case::node_null("nodes: { n: ~ }")]
    #[case::link_string("links: { l: 'a:eth0 b:eth0' }")]
    #[case::link_number_end("links: { l: { a: 1, b: 'n:eth0' } }")]
    #[case::route_number("nodes: { n: { routes: [1] } }")]
    #[case::uplinks_string("router: { node: n, uplinks: wan1 }")]
    #[case::weights_negative("router: { node: n, uplinks: [l], weights: { l: -1 } }")]
    fn topology_schema_and_deserializer_agree_on_types(#[case] patch: &str) {
        let json = patched("topologies/jupiter.yaml", patch);
        let yaml = serde_yaml_ng::to_string(&json).expect("YAML");
        let read = serde_yaml_ng::from_str::<raw::Topology>(&yaml);
        assert_eq!(
            read.is_ok(),
            validator("topology").is_valid(&json),
            "{patch}: deserializer {read:?}"
        );
    }

    /// A file's modeline names the schema of its kind, and the path resolves.
    #[test]
    fn modelines_name_the_right_schema() {
        let mut seen = 0;
        for (dir, kind) in [("scenarios", "scenario"), ("topologies", "topology")] {
            for f in files_under(dir) {
                let text = std::fs::read_to_string(&f).expect("readable");
                let Some(rel) = text
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# yaml-language-server: $schema="))
                else {
                    continue;
                };
                seen += 1;
                let named = f.parent().expect("a folder").join(rel.trim());
                assert!(
                    named.canonicalize().ok() == committed(kind).canonicalize().ok(),
                    "{}: the modeline names `{rel}`, not schema/{kind}.schema.json",
                    f.display()
                );
            }
        }
        assert!(seen >= 2, "the example files lost their modelines");
    }
}
