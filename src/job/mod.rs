//! TEMPORARY stub until the real loader lands.
mod model;
mod resolved;
pub use resolved::*;
use std::path::Path;

#[derive(Debug)]
pub struct JobFileErrors(pub String);
impl std::fmt::Display for JobFileErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for JobFileErrors {}

pub fn schema_text() -> &'static str {
    include_str!("../../schemas/job.schema.json")
}

pub fn load(path: &Path) -> Result<Job, JobFileErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| JobFileErrors(e.to_string()))?;
    let file: model::JobFile = toml::from_str(&text).map_err(|e| JobFileErrors(e.to_string()))?;
    let dir = std::fs::canonicalize(path)
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let name = file
        .name
        .clone()
        .unwrap_or_else(|| path.file_stem().unwrap().to_string_lossy().into_owned());
    let dur = |s: &Option<String>| s.as_ref().map(|s| humantime::parse_duration(s).unwrap());
    let tasks = file
        .tasks
        .iter()
        .map(|t| {
            let f = file.functions.get(&t.function);
            let bname = f
                .and_then(|f| f.builtin.clone())
                .unwrap_or(t.function.clone());
            let inputs = match &t.inputs {
                model::InputsDef::List(v) => InputSpec::List(v.clone()),
                model::InputsDef::Source(s) => {
                    if let Some(r) = &s.range {
                        InputSpec::Range {
                            start: r[0],
                            stop: r[1],
                            step: *r.get(2).unwrap_or(&1),
                        }
                    } else if let Some(l) = &s.lines {
                        InputSpec::Lines(dir.join(l))
                    } else if let Some(l) = &s.file {
                        InputSpec::File(dir.join(l))
                    } else if let Some(g) = &s.glob {
                        InputSpec::Glob {
                            pattern: dir.join(g).to_string_lossy().into_owned(),
                            base: dir.clone(),
                        }
                    } else if let Some(m) = &s.matrix {
                        InputSpec::Matrix(
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_array().unwrap().clone()))
                                .collect(),
                        )
                    } else {
                        InputSpec::From(s.from.clone().unwrap())
                    }
                }
            };
            let workers = match &t.workers.clone().or(file.workers.clone()) {
                Some(model::Workers::Count(n)) => *n as usize,
                _ => default_workers(),
            };
            Task {
                name: t.name.clone().unwrap_or(t.function.clone()),
                function: FunctionSpec {
                    label: format!("builtin:{bname}"),
                    kind: FunctionKind::Builtin {
                        name: bname,
                        options: crate::builtins::Options {
                            template: f.and_then(|f| f.template.clone()),
                        },
                    },
                },
                inputs,
                workers,
                timeout: dur(&t.timeout)
                    .or(dur(&f.and_then(|f| f.timeout.clone())))
                    .or(dur(&file.timeout)),
                retries: t
                    .retries
                    .or(f.and_then(|f| f.retries))
                    .or(file.retries)
                    .unwrap_or(0),
                kill_grace: dur(&t.kill_grace)
                    .or(dur(&file.kill_grace))
                    .unwrap_or(DEFAULT_KILL_GRACE),
            }
        })
        .collect();
    let out = file
        .output
        .clone()
        .and_then(|o| o.path)
        .unwrap_or("out/{job}.json".into());
    Ok(Job {
        name,
        file: path.to_path_buf(),
        dir: dir.clone(),
        description: file.description.clone(),
        schedule: file.schedule.clone(),
        output: OutputPlan {
            path_template: dir.join(out),
            format: file
                .output
                .and_then(|o| o.format)
                .and_then(|f| Format::parse(&f)),
        },
        tasks,
    })
}
