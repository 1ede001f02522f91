//! TOML results: the same tree as JSON, built in memory and written at the end. TOML has no
//! null, so JSON nulls are left out (a null output is simply absent).

use std::io::{self, Write};

use serde_json::Value as Json;
use toml::Value as Toml;

use super::{OutputFile, RunFooter, RunHeader, Sink, TaskHeader};
use crate::event::{Rendered, Summary};

pub struct TomlSink {
    file: OutputFile,
    header: RunHeader,
    tasks: Vec<(TaskHeader, Vec<IndexedRecord>, Summary)>,
}

/// A record as JSON, with its index (records arrive in any order and are sorted at the end).
type IndexedRecord = (u64, Json);

impl TomlSink {
    pub fn new(file: OutputFile, header: RunHeader) -> TomlSink {
        TomlSink {
            file,
            header,
            tasks: Vec::new(),
        }
    }
}

impl Sink for TomlSink {
    fn begin_task(&mut self, header: &TaskHeader) -> io::Result<()> {
        self.tasks
            .push((header.clone(), Vec::new(), Summary::default()));
        Ok(())
    }

    fn run(&mut self, first: u64, rendered: Rendered) -> io::Result<()> {
        if let Some((_, kept, _)) = self.tasks.last_mut() {
            for (i, index) in (0..rendered.len()).zip(first..) {
                let record = serde_json::from_slice(rendered.json(i)).map_err(io::Error::other)?;
                kept.push((index, record));
            }
        }
        Ok(())
    }

    fn end_task(&mut self, summary: &Summary) -> io::Result<()> {
        if let Some((_, records, task_summary)) = self.tasks.last_mut() {
            records.sort_by_key(|(index, _)| *index);
            *task_summary = *summary;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, footer: &RunFooter) -> io::Result<()> {
        let mut doc = serde_json::to_value(&self.header).map_err(io::Error::other)?;
        let extra = serde_json::to_value(footer).map_err(io::Error::other)?;
        let tasks: Vec<Json> = std::mem::take(&mut self.tasks)
            .into_iter()
            .map(|(header, records, summary)| {
                let mut task = serde_json::to_value(&header)?;
                task["summary"] = serde_json::to_value(summary)?;
                let results = records.into_iter().map(|(_, record)| record).collect();
                task["results"] = Json::Array(results);
                Ok(task)
            })
            .collect::<Result<_, serde_json::Error>>()
            .map_err(io::Error::other)?;
        if let (Json::Object(doc), Json::Object(extra)) = (&mut doc, extra) {
            doc.extend(extra);
            doc.insert("tasks".to_owned(), Json::Array(tasks));
        }
        let toml = json_to_toml(doc).unwrap_or_else(|| Toml::Table(toml::Table::new()));
        let text = toml::to_string(&toml).map_err(io::Error::other)?;
        self.file.write_all(text.as_bytes())?;
        self.file.commit()
    }
}

/// JSON → TOML; `None` for null (dropped by the caller, as TOML cannot say null).
fn json_to_toml(value: Json) -> Option<Toml> {
    Some(match value {
        Json::Null => return None,
        Json::Bool(b) => Toml::Boolean(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Toml::Integer(i),
            // u64 beyond i64 and floats: TOML integers are i64, so these become floats or,
            // when a float would lose digits, strings that keep them.
            None => match n.as_u64() {
                Some(u) => Toml::String(u.to_string()),
                None => Toml::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
        },
        Json::String(s) => Toml::String(s),
        Json::Array(items) => Toml::Array(items.into_iter().filter_map(json_to_toml).collect()),
        Json::Object(map) => Toml::Table(
            map.into_iter()
                .filter_map(|(k, v)| json_to_toml(v).map(|v| (k, v)))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nulls_are_left_out() {
        let toml = json_to_toml(json!({"a": null, "b": [1, null, 2], "c": {"d": null}})).unwrap();
        assert_eq!(toml::to_string(&toml).unwrap().trim(), "b = [1, 2]\n\n[c]");
    }

    #[test]
    fn u64_beyond_i64_keeps_its_digits() {
        let toml = json_to_toml(json!(18446744073709551615u64)).unwrap();
        assert_eq!(toml, Toml::String("18446744073709551615".into()));
    }
}
