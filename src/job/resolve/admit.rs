//! `[admit]`: the admission gates, and the bound no machine state could ever meet.

use super::super::resolved::Admit;
use super::Resolver;
use super::memory_limit;
use crate::job::span::At;
use crate::process::machine;

impl Resolver<'_> {
    pub(super) fn admit(&mut self) -> Admit {
        let Some(a) = self.file.admit.as_ref() else {
            return Admit::default();
        };
        // The schema checked the size's form.
        let memfree = a.memfree.as_deref().and_then(|s| memory_limit(s).ok());
        if let Some((message, help)) = memfree.and_then(memfree_problem) {
            self.push(&["admit", "memfree"], At::Value, message, Some(help));
        }
        Admit {
            memfree,
            load: a.load,
        }
    }
}

/// Why `memfree` (bytes) could never be met on this machine, with what to do: a bound
/// above the machine's memory would hold every item back forever.
pub fn memfree_problem(memfree: u64) -> Option<(String, String)> {
    let total = match machine::mem_total() {
        Ok(total) => total,
        Err(e) => {
            return Some((
                format!("`memfree` needs the machine's memory, but {e}"),
                "leave `memfree` out on a system without /proc/meminfo".to_owned(),
            ));
        }
    };
    (memfree > total).then(|| {
        (
            format!(
                "`memfree` is {}, more than this machine's memory ({}): no item could ever start",
                machine::human_bytes(memfree),
                machine::human_bytes(total)
            ),
            "set it below the machine's memory (runjobs waits while less than it is available)"
                .to_owned(),
        )
    })
}
