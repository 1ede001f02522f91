//! The layout stays readable: no import circles among the modules of `src/` (file by file,
//! and folder by folder), no file over ~900 lines and no function over ~120 lines outside
//! tests, and a short `main.rs`. See ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::util::repo;

const MAX_FILE_LINES: usize = 900;
const MAX_FUNCTION_LINES: usize = 120;
const MAX_MAIN_LINES: usize = 100;

/// A source file: its module path (`exec::pool::queue`; `crate` for main.rs) and its text
/// without the tests at its end.
struct Module {
    name: String,
    path: PathBuf,
    code: String,
}

fn modules() -> Vec<Module> {
    let src = repo().join("src");
    let mut files = Vec::new();
    collect_rs(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let name = match parts.as_slice() {
                [only] if only == "main" => "crate".to_owned(),
                _ => parts.join("::"),
            };
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            Module { name, path, code }
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a module names through `crate::` or `super::`, made absolute
/// (`record::journal::Entry`); grouped imports (`use crate::{a, b::c}`) give one path each.
fn referenced_paths(module: &Module) -> Vec<String> {
    let mut found = Vec::new();
    let own: Vec<&str> = if module.name == "crate" {
        Vec::new()
    } else {
        module.name.split("::").collect()
    };
    let code = &module.code;
    for (at, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        if at > 0 && code[..at].ends_with(|c: char| ident_char(c) || c == ':') {
            continue; // `super::super::` is read from its first `super`
        }
        let mut base: Vec<String> = Vec::new();
        let mut rest = &code[at..];
        if rest.starts_with("crate::") {
            rest = &rest["crate::".len()..];
        } else {
            // `super` is the parent module, whether the file is `a/b.rs` or `a/b/mod.rs`.
            let mut up = own.len();
            while let Some(tail) = rest.strip_prefix("super::") {
                up = up.saturating_sub(1);
                rest = tail;
            }
            base = own[..up].iter().map(|s| s.to_string()).collect();
        }
        let heads: Vec<String> = match rest.strip_prefix('{') {
            Some(group) => {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect()
            }
            None => vec![rest.to_owned()],
        };
        for head in heads {
            let path: String = head
                .chars()
                .take_while(|c| ident_char(*c) || *c == ':')
                .collect();
            let mut full = base.clone();
            full.extend(
                path.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            found.push(full.join("::"));
        }
    }
    found
}

/// The module a path lands in: its longest prefix that is a module.
fn module_of<'a>(path: &str, names: &'a BTreeSet<String>) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| names.get(&parts[..n].join("::")))
}

fn is_within(inner: &str, outer: &str) -> bool {
    outer == "crate" || inner == outer || inner.starts_with(&format!("{outer}::"))
}

/// A cycle in `edges`, if there is one, as the modules along it.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = visit(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node.as_str())
            && let Some(cycle) = visit(node, edges, &mut state, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

/// Who imports whom: file by file (a module naming its own ancestor goes through that
/// ancestor's re-exports, and a `mod.rs` naming its children only declares them, so those
/// are not edges), and folder by folder (the first segment of each module).
fn import_graphs() -> (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let modules = modules();
    let names: BTreeSet<String> = modules.iter().map(|m| m.name.clone()).collect();
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let top = |name: &str| name.split("::").next().unwrap_or(name).to_owned();
    for module in &modules {
        for path in referenced_paths(module) {
            let Some(target) = module_of(&path, &names) else {
                continue;
            };
            if is_within(&module.name, target) || is_within(target, &module.name) {
                continue;
            }
            files
                .entry(module.name.clone())
                .or_default()
                .insert(target.clone());
            if module.name != "crate" && top(&module.name) != top(target) {
                folders
                    .entry(top(&module.name))
                    .or_default()
                    .insert(top(target));
            }
        }
    }
    (files, folders)
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let (files, folders) = import_graphs();
    assert!(
        files.values().map(BTreeSet::len).sum::<usize>() > 50,
        "the import graph is too small to be the real one: {files:?}"
    );
    if let Some(cycle) = find_cycle(&folders) {
        panic!("an import circle among folders: {}", cycle.join(" -> "));
    }
    if let Some(cycle) = find_cycle(&files) {
        panic!("an import circle among modules: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let edges = |pairs: &[(&str, &str)]| {
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            map.entry(a.to_string()).or_default().insert(b.to_string());
        }
        map
    };
    assert_eq!(find_cycle(&edges(&[("a", "b"), ("b", "c")])), None);
    let cycle = find_cycle(&edges(&[("a", "b"), ("b", "c"), ("c", "a")])).unwrap();
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
}

#[test]
fn files_and_functions_stay_short_and_main_is_a_dispatcher() {
    let mut too_long = Vec::new();
    // Test files (`tests.rs`) are tests.
    for module in modules()
        .into_iter()
        .filter(|m| !m.name.ends_with("::tests"))
    {
        let lines = module.code.lines().count();
        let limit = if module.name == "crate" {
            MAX_MAIN_LINES
        } else {
            MAX_FILE_LINES
        };
        if lines > limit {
            too_long.push(format!("{}: {lines} lines", module.path.display()));
        }
        let code: Vec<&str> = module.code.lines().collect();
        for (at, line) in code.iter().enumerate() {
            let body = line.trim_start();
            let indent = &line[..line.len() - body.len()];
            let is_fn = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn "]
                .iter()
                .any(|p| body.starts_with(p));
            if !is_fn || body.ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            let Some(end) = code[at..].iter().position(|l| *l == close) else {
                continue;
            };
            if end + 1 > MAX_FUNCTION_LINES {
                too_long.push(format!(
                    "{}:{}: a function of {} lines",
                    module.path.display(),
                    at + 1,
                    end + 1
                ));
            }
        }
    }
    assert!(too_long.is_empty(), "{}", too_long.join("\n"));
}
