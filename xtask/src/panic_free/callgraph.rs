//! The call graph of an image's assembly (`rustc --emit=asm` after LTO): which functions can
//! reach the panic handler, and where they call into `core`'s panicking functions. Used to
//! explain a failed panic-freedom check; the verdict itself is the link's.
//!
//! Every top-level label is a node (functions, and data such as vtables and callback tables);
//! a node's edges are the labels its instructions and data directives name (calls, tail
//! jumps, addresses taken, `.quad` entries). Debug sections are skipped. Source locations come
//! from the `.cv_file`/`.cv_loc` directives in front of each instruction, which name the
//! innermost inlined source line.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The panic handler's symbol ends with this (the `#[panic_handler]` lang item).
const HANDLER_SUFFIX: &str = "rust_begin_unwind";

/// One label of the assembly.
#[derive(Default)]
struct Node {
    /// Labels it names, each with the source location in effect where it first does.
    edges: BTreeMap<String, Option<String>>,
}

/// A parsed assembly file.
pub struct CallGraph {
    nodes: BTreeMap<String, Node>,
    /// Readable names (`ferry_core::x::y`) from the CodeView records, by symbol.
    names: BTreeMap<String, String>,
    /// Exported (`.globl`) symbols.
    globals: BTreeSet<String>,
}

/// A function outside `core` that can reach the panic handler through a `core` function.
#[derive(Debug, PartialEq, Eq)]
pub struct PanicSite {
    /// The function, by readable name.
    pub function: String,
    /// The `core` functions it calls that lead to the handler, each with the source line of
    /// the call (innermost inlined location).
    pub calls: Vec<(String, Option<String>)>,
    /// How an exported symbol reaches it (readable names), if one does.
    pub reached_from_export: Option<Vec<String>>,
}

fn is_label_line(line: &str) -> Option<&str> {
    let label = line.strip_suffix(':')?;
    let plain = !label.is_empty()
        && !label.starts_with('.')
        && !label.starts_with(char::is_whitespace)
        && !label.contains(char::is_whitespace);
    plain.then_some(label)
}

fn tokens(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || "_$.@".contains(c)))
        .filter(|t| !t.is_empty())
}

impl CallGraph {
    /// Parses `asm` (LLVM's x86-64 AT&T output for a COFF target).
    #[must_use]
    pub fn parse(asm: &str) -> Self {
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        let mut names = BTreeMap::new();
        let mut globals = BTreeSet::new();
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut location: Option<String> = None;
        let mut pending_name_for: Option<String> = None;
        let mut raw_edges: Vec<(String, String, Option<String>)> = Vec::new();
        for line in asm.lines() {
            if let Some(label) = is_label_line(line) {
                nodes.entry(label.to_string()).or_default();
                current = Some(label.to_string());
                location = None;
                continue;
            }
            let directive = line.trim_start();
            let word = directive.split_whitespace().next().unwrap_or("");
            match word {
                ".section" | ".text" | ".data" | ".bss" => {
                    current = None;
                    continue;
                }
                ".globl" => {
                    if let Some(symbol) = directive.split_whitespace().nth(1) {
                        globals.insert(symbol.to_string());
                    }
                    continue;
                }
                ".cv_file" => {
                    let mut parts = directive.splitn(3, char::is_whitespace).skip(1);
                    if let (Some(id), Some(rest)) = (parts.next(), parts.next()) {
                        let path = rest.trim().split('"').nth(1).unwrap_or("").to_string();
                        files.insert(id.trim().to_string(), path);
                    }
                    continue;
                }
                ".cv_loc" => {
                    let parts: Vec<&str> = directive.split_whitespace().collect();
                    if let (Some(file), Some(line)) = (parts.get(2), parts.get(3)) {
                        let path = files.get(*file).map_or("?", String::as_str);
                        location = Some(format!("{}:{line}", short_path(path)));
                    }
                    continue;
                }
                ".secidx" => {
                    pending_name_for = directive.split_whitespace().nth(1).map(str::to_string);
                    continue;
                }
                ".asciz" => {
                    if let Some(symbol) = pending_name_for.take() {
                        let name = directive.split('"').nth(1).unwrap_or("").to_string();
                        if !name.is_empty() {
                            names.insert(symbol, name);
                        }
                    }
                    continue;
                }
                _ => {}
            }
            let data = matches!(word, ".quad" | ".long" | ".rva" | ".secrel32");
            if word.starts_with('.') && !data {
                continue;
            }
            let Some(from) = &current else {
                continue;
            };
            for token in tokens(directive).skip(usize::from(!data)) {
                raw_edges.push((from.clone(), token.to_string(), location.clone()));
            }
        }
        for (from, to, at) in raw_edges {
            if to != from
                && nodes.contains_key(&to)
                && let Some(node) = nodes.get_mut(&from)
            {
                node.edges.entry(to).or_insert(at);
            }
        }
        Self {
            nodes,
            names,
            globals,
        }
    }

    /// The readable name of `symbol` (its mangled form if CodeView does not name it).
    #[must_use]
    pub fn name<'a>(&'a self, symbol: &'a str) -> &'a str {
        self.names.get(symbol).map_or(symbol, String::as_str)
    }

    fn is_core(&self, symbol: &str) -> bool {
        symbol.ends_with(HANDLER_SUFFIX) || self.name(symbol).starts_with("core::")
    }

    /// The nodes that can reach the panic handler (the handler included).
    fn reaching_handler(&self) -> BTreeSet<&str> {
        let mut callers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (from, node) in &self.nodes {
            for to in node.edges.keys() {
                callers.entry(to.as_str()).or_default().push(from.as_str());
            }
        }
        let mut reach: BTreeSet<&str> = self
            .nodes
            .keys()
            .map(String::as_str)
            .filter(|s| s.ends_with(HANDLER_SUFFIX))
            .collect();
        let mut queue: VecDeque<&str> = reach.iter().copied().collect();
        while let Some(symbol) = queue.pop_front() {
            for caller in callers.get(symbol).into_iter().flatten() {
                if reach.insert(caller) {
                    queue.push_back(caller);
                }
            }
        }
        reach
    }

    /// The shortest path from an exported symbol to `target`, by readable names.
    fn path_from_export(&self, target: &str) -> Option<Vec<String>> {
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue: VecDeque<&str> = VecDeque::new();
        for global in &self.globals {
            if self.nodes.contains_key(global) {
                parent.insert(global.as_str(), global.as_str());
                queue.push_back(global.as_str());
            }
        }
        while let Some(symbol) = queue.pop_front() {
            if symbol == target {
                let mut path = vec![self.name(symbol).to_string()];
                let mut at = symbol;
                while let Some(&up) = parent.get(at).filter(|&&up| up != at) {
                    path.push(self.name(up).to_string());
                    at = up;
                }
                path.reverse();
                return Some(path);
            }
            for to in self
                .nodes
                .get(symbol)
                .into_iter()
                .flat_map(|n| n.edges.keys())
            {
                if !parent.contains_key(to.as_str()) {
                    parent.insert(to.as_str(), symbol);
                    queue.push_back(to.as_str());
                }
            }
        }
        None
    }

    /// Every function outside `core` that calls a `core` function from which the panic
    /// handler is reachable.
    #[must_use]
    pub fn panic_sites(&self) -> Vec<PanicSite> {
        let reach = self.reaching_handler();
        let mut sites = Vec::new();
        for (symbol, node) in &self.nodes {
            if self.is_core(symbol) || !reach.contains(symbol.as_str()) {
                continue;
            }
            let calls: Vec<(String, Option<String>)> = node
                .edges
                .iter()
                .filter(|(to, _)| self.is_core(to) && reach.contains(to.as_str()))
                .map(|(to, at)| (self.name(to).to_string(), at.clone()))
                .collect();
            if calls.is_empty() {
                continue;
            }
            sites.push(PanicSite {
                function: self.name(symbol).to_string(),
                calls,
                reached_from_export: self.path_from_export(symbol),
            });
        }
        sites
    }
}

/// `path` from the crate or library directory on (`crates/core/src/x.rs`,
/// `library/core/src/y.rs`, `crc-3.3.0/src/z.rs`), without this machine's prefix.
fn short_path(path: &str) -> &str {
    for marker in ["crates/", "library/", "registry/src/"] {
        if let Some(at) = path.find(marker) {
            let rest = &path[at..];
            return match marker {
                "registry/src/" => rest.splitn(4, '/').nth(3).unwrap_or(rest),
                _ => rest,
            };
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::{CallGraph, PanicSite, short_path};

    const ASM: &str = "\
\t.globl\tDriverEntry
\t.section\t.text,\"xr\",one_only,DriverEntry
DriverEntry:
\t.cv_file\t1 \"/x/crates/driver/src/entry.rs\" \"AB\" 3
\t.cv_loc\t0 1 10 0
\tcallq\tmine
\tleaq\tcallback(%rip), %rcx
\tretq
\t.section\t.text,\"xr\",one_only,mine
mine:
\t.cv_file\t2 \"/x/crates/core/src/writer.rs\" \"CD\" 3
\t.cv_loc\t1 2 42 7
\tcallq\t_Rcore_len_mismatch
\tjmp\tclean
clean:
\tretq
callback:
\tretq
unused_site:
\tcallq\t_Rcore_len_mismatch
_Rcore_len_mismatch:
\tcallq\t_Rpanic_fmt
_Rpanic_fmt:
\tcallq\t_Rxx17rust_begin_unwind
_Rxx17rust_begin_unwind:
\tud2
\t.section\t.debug$S,\"dr\"
\t.secidx\t_Rcore_len_mismatch
\t.asciz\t\"core::slice::len_mismatch_fail\"
\t.secidx\t_Rpanic_fmt
\t.asciz\t\"core::panicking::panic_fmt\"
\t.secidx\tmine
\t.asciz\t\"ferry_core::writer::bytes\"
\t.secrel32\tDriverEntry
";

    #[test]
    fn sites_are_the_non_core_callers_of_panicking_core_functions() {
        let graph = CallGraph::parse(ASM);
        let sites = graph.panic_sites();
        assert_eq!(
            sites,
            vec![
                PanicSite {
                    function: "ferry_core::writer::bytes".into(),
                    calls: vec![(
                        "core::slice::len_mismatch_fail".into(),
                        Some("crates/core/src/writer.rs:42".into())
                    )],
                    reached_from_export: Some(vec![
                        "DriverEntry".into(),
                        "ferry_core::writer::bytes".into()
                    ]),
                },
                PanicSite {
                    function: "unused_site".into(),
                    calls: vec![("core::slice::len_mismatch_fail".into(), None)],
                    reached_from_export: None,
                },
            ]
        );
    }

    #[test]
    fn a_graph_without_a_path_to_the_handler_has_no_sites() {
        let asm = "\t.globl\tDriverEntry\nDriverEntry:\n\tcallq\tf\nf:\n\tretq\n\
                   _Rxx17rust_begin_unwind:\n\tud2\n";
        assert!(CallGraph::parse(asm).panic_sites().is_empty());
    }

    #[test]
    fn paths_lose_this_machines_prefix() {
        assert_eq!(
            short_path("/home/u/src/ferry/crates/core/src/a.rs"),
            "crates/core/src/a.rs"
        );
        assert_eq!(
            short_path("/usr/lib/rustlib/src/rust/library/core/src/panic.rs"),
            "library/core/src/panic.rs"
        );
        assert_eq!(
            short_path("/root/.cargo/registry/src/index.crates.io-1/crc-3.3.0/src/crc32.rs"),
            "crc-3.3.0/src/crc32.rs"
        );
    }
}
