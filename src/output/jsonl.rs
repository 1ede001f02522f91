//! JSON Lines results: one object per finished item as it finishes (`"record": "item"`,
//! with `task` and `index`), then a last line (`"record": "run"`) with the run's status and
//! summary, each task's function identity and its header. Every line says which it is, so
//! a data tool keeps the items with one filter. Nothing is held in memory.

use std::io::{self, Write};

use serde::Serialize;

use super::Run;
use super::{OutputFile, Sink};
use crate::record::{RunFooter, RunHeader, TaskFooter, TaskHeader};

/// How each item's line starts, before its task's name.
const ITEM_PREFIX: &[u8] = b"{\"record\":\"item\",\"task\":";

pub struct JsonlSink {
    file: OutputFile,
    header: RunHeader,
    task_prefix: Vec<u8>,
    line: Vec<u8>,
    /// Each task's function identity, for `--resume` (on the last line).
    function_hashes: serde_json::Map<String, serde_json::Value>,
    /// The tasks' headers and their workers' CPU, for a reader (on the last line).
    tasks: Vec<TaskLine>,
}

/// A task on the last line: its header, and what its footer adds to the summary.
#[derive(Serialize)]
struct TaskLine {
    #[serde(flatten)]
    header: TaskHeader,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker_cpu_s: Option<f64>,
}

impl JsonlSink {
    pub fn new(file: OutputFile, header: RunHeader) -> JsonlSink {
        JsonlSink {
            file,
            header,
            task_prefix: Vec::new(),
            line: Vec::new(),
            function_hashes: serde_json::Map::new(),
            tasks: Vec::new(),
        }
    }
}

impl Sink for JsonlSink {
    fn begin_task(&mut self, header: &TaskHeader) -> io::Result<()> {
        self.task_prefix = ITEM_PREFIX.to_vec();
        serde_json::to_writer(&mut self.task_prefix, &header.name).map_err(io::Error::other)?;
        self.task_prefix.push(b',');
        self.function_hashes
            .insert(header.name.clone(), header.function_hash.clone().into());
        self.tasks.push(TaskLine {
            header: header.clone(),
            worker_cpu_s: None,
        });
        Ok(())
    }

    fn results(&mut self, _first: u64, run: Run) -> io::Result<()> {
        self.line.clear();
        run.with_rendered(|rendered| {
            for i in 0..rendered.len() {
                // `{"record":"item","task":"x",` then the record's members.
                self.line.extend_from_slice(&self.task_prefix);
                self.line.extend_from_slice(&rendered.json(i)[1..]);
                self.line.push(b'\n');
            }
            Ok(())
        })?;
        self.file.write_all(&self.line)
    }

    fn end_task(&mut self, footer: &TaskFooter) -> io::Result<()> {
        if let Some(task) = self.tasks.last_mut() {
            task.worker_cpu_s = footer.worker_cpu_s;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, footer: &RunFooter) -> io::Result<()> {
        #[derive(Serialize)]
        struct Last<'a> {
            record: &'static str,
            #[serde(flatten)]
            header: &'a RunHeader,
            #[serde(flatten)]
            footer: &'a RunFooter,
            function_hashes: &'a serde_json::Map<String, serde_json::Value>,
            tasks: &'a [TaskLine],
        }
        serde_json::to_writer(
            &mut self.file,
            &Last {
                record: "run",
                header: &self.header,
                footer,
                function_hashes: &self.function_hashes,
                tasks: &self.tasks,
            },
        )
        .map_err(io::Error::other)?;
        self.file.write_all(b"\n")?;
        self.file.commit()
    }
}
