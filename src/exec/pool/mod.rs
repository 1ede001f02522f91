//! The local executor: N slots over one work queue, each driving a worker process (or a
//! process per item); reports results as `Event`s and never prints.

mod attempt;
mod command_slot;
mod in_flight;
mod message_slot;
mod queue;
mod replies;
mod run;

pub use run::run_task;
