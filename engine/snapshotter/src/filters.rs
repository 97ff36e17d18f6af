//! containerd's list filters, the part snapshotters are asked: `FIELD==VALUE`,
//! `FIELD!=VALUE` and `FIELD` (present) joined by `,` (all must hold), several filters (any may hold). Fields:
//! `name`, `parent`, `kind`, `labels.KEY` or `labels."KEY"`; values may be quoted. Anything
//! else is refused as an invalid argument rather than ignored.

use crate::error::{SnapError, SnapResult};
use crate::records::Record;

/// One parsed filter: conditions that must all hold.
#[derive(Debug, PartialEq)]
pub struct Filter(Vec<Condition>);

#[derive(Debug, PartialEq)]
struct Condition {
    field: Field,
    equal: bool,
    value: String,
}

#[derive(Debug, PartialEq)]
enum Field {
    Name,
    Parent,
    Kind,
    Label(String),
}

/// Parses containerd filter strings (an empty list matches everything).
pub fn parse(filters: &[String]) -> SnapResult<Vec<Filter>> {
    filters
        .iter()
        .filter(|f| !f.trim().is_empty())
        .map(|f| parse_one(f))
        .collect()
}

/// Whether `record` passes: no filters, or any one filter whose conditions all hold.
pub fn matches(filters: &[Filter], record: &Record) -> bool {
    filters.is_empty()
        || filters.iter().any(|Filter(conditions)| {
            conditions.iter().all(|c| {
                let actual = match &c.field {
                    Field::Name => Some(record.key.as_str()),
                    Field::Parent => Some(record.parent.as_str()),
                    Field::Kind => Some(record.kind.name()),
                    Field::Label(key) => record.labels.get(key).map(String::as_str),
                };
                if !c.equal && c.value.is_empty() {
                    return actual.is_some_and(|a| !a.is_empty());
                }
                (actual == Some(c.value.as_str())) == c.equal
            })
        })
}

fn parse_one(text: &str) -> SnapResult<Filter> {
    let invalid = |why: &str| SnapError::InvalidArgument(format!("filter {text:?}: {why}"));
    let mut conditions = Vec::new();
    for part in split_outside_quotes(text, ',') {
        let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
            (f, false, v)
        } else if let Some((f, v)) = part.split_once("==") {
            (f, true, v)
        } else if !part.contains(['~', '=', '!']) {
            // A field alone: it is present (for a label) or non-empty.
            (part, false, "")
        } else {
            return Err(invalid("only ==, != and a field alone are understood"));
        };
        let field = match field.trim() {
            "name" => Field::Name,
            "parent" => Field::Parent,
            "kind" => Field::Kind,
            other => match other.strip_prefix("labels.") {
                Some(key) => Field::Label(unquote(key)),
                None => return Err(invalid(&format!("unknown field {other:?}"))),
            },
        };
        conditions.push(Condition {
            field,
            equal,
            value: unquote(value.trim()),
        });
    }
    Ok(Filter(conditions))
}

fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(text: &str) -> String {
    let text = text.trim();
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\""),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Kind;
    use std::collections::BTreeMap;

    fn record(key: &str, parent: &str, label: Option<&str>) -> Record {
        Record {
            id: 1,
            key: key.into(),
            parent: parent.into(),
            kind: Kind::Committed,
            labels: label
                .map(|v| BTreeMap::from([("containerd.io/snapshot.ref".to_string(), v.into())]))
                .unwrap_or_default(),
            created: std::time::SystemTime::UNIX_EPOCH,
            updated: std::time::SystemTime::UNIX_EPOCH,
            image: None,
            owns_image: false,
        }
    }

    #[test]
    fn the_remote_snapshot_lookup_filter_matches_label_and_parent() {
        let filters = parse(&[
            r#"labels."containerd.io/snapshot.ref"==sha256:abc,parent=="default/1/p""#.into(),
        ])
        .unwrap();
        assert!(matches(
            &filters,
            &record("k", "default/1/p", Some("sha256:abc"))
        ));
        assert!(!matches(
            &filters,
            &record("k", "other", Some("sha256:abc"))
        ));
        assert!(!matches(
            &filters,
            &record("k", "default/1/p", Some("sha256:abd"))
        ));
        assert!(!matches(&filters, &record("k", "default/1/p", None)));
    }

    #[test]
    fn several_filters_are_alternatives_and_unknown_syntax_is_refused() {
        let filters = parse(&["name==a".into(), "kind!=committed".into()]).unwrap();
        assert!(matches(&filters, &record("a", "", None)));
        assert!(!matches(&filters, &record("b", "", None)));
        assert!(matches(&parse(&[]).unwrap(), &record("b", "", None)));
        assert!(parse(&["name~=a.*".into()]).is_err());
        let present = parse(&[r#"labels."containerd.io/snapshot.ref""#.into()]).unwrap();
        assert!(matches(&present, &record("a", "", Some("x"))));
        assert!(!matches(&present, &record("a", "", None)));
        assert!(parse(&["size==3".into()]).is_err());
    }
}
