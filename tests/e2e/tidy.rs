//! Architecture invariants a machine can check (see ARCHITECTURE.md).

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let mut missing = Vec::new();
    for dir in ["crates", "src", "tests", "benches"] {
        for f in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            if !text.trim_start().starts_with("//!") {
                missing.push(f.strip_prefix(root()).unwrap_or(&f).display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "files without a leading //! doc: {missing:?}"
    );
}

/// The pure crates do no I/O: they may not depend on an HTTP client, a runtime, a store or a
/// random number generator.
#[test]
fn pure_crates_have_no_io_dependencies() {
    let mut found = Vec::new();
    for krate in ["core", "mapping", "expr"] {
        let path = format!("crates/{krate}/Cargo.toml");
        let manifest = std::fs::read_to_string(root().join(&path)).unwrap();
        let mut in_deps = false;
        for (n, line) in manifest.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('[') {
                // `[dependencies]`, `[target.'cfg(unix)'.dependencies]`; not dev-dependencies.
                in_deps = line.trim_end_matches(']').ends_with("dependencies")
                    && !line.contains("dev-dependencies");
                continue;
            }
            let name = line
                .split(['=', '.', ' '])
                .next()
                .unwrap_or("")
                .trim_matches('"');
            if in_deps && ["reqwest", "tokio", "sled", "axum", "hyper", "rand"].contains(&name) {
                found.push(format!("{path}:{}: depends on {name}", n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O dependencies in pure crates:\n{}",
        found.join("\n")
    );
}

/// Only the scim crate builds SCIM JSON: no other library crate names the PatchOp schema.
#[test]
fn only_the_scim_crate_speaks_scim_json() {
    for krate in ["core", "mapping", "engine", "config", "graph", "store"] {
        for f in rust_files(&root().join("crates").join(krate).join("src")) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(
                !text.contains("urn:ietf:params:scim:api:messages"),
                "{} builds SCIM messages",
                f.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Source invariants (ARCHITECTURE.md, "Invariants"), checked on the code itself: comments are
// removed, string and char literals blanked, and `#[cfg(test)]` items and test-module files
// skipped (tests may read the clock). Every finding names the file and line.
// ---------------------------------------------------------------------------------------------

/// I/O, the clock, fresh ids and randomness: what the pure code may not touch.
const IMPURE: &[&str] = &[
    "std::fs",
    "std::env",
    "std::net",
    "std::process",
    "File::open",
    "SystemTime::now",
    "Utc::now",
    "Local::now",
    "Instant::now",
    "Uuid::new_v4",
    "Uuid::now_v7",
    "rand::",
    "tokio::",
];

/// A path that starts with these (after `use std::{env, fs};`) is I/O too.
const IMPURE_PATH_STARTS: &[&str] = &["fs::", "env::"];

/// Where the engine would get time or ids without being given them.
const CLOCK_AND_IDS: &[&str] = &[
    "Utc::now",
    "SystemTime::now",
    "Instant::now",
    "Uuid::now_v7",
    "Uuid::new_v4",
];

/// A `static` whose type has one of these can change after start-up: global mutable state (a
/// cache, a counter). A `LazyLock` of an immutable value (a compiled constant regex) is a
/// constant and allowed.
const INTERIOR_MUTABILITY: &[&str] = &[
    "Mutex",
    "RwLock",
    "OnceLock",
    "OnceCell",
    "RefCell",
    "Cell<",
    "Atomic",
    "UnsafeCell",
];

/// Deliberate exceptions: (file, finding, why). Each must still be needed, so a stale entry
/// fails too.
const ALLOWED: &[(&str, &str, &str)] = &[(
    "crates/core/src/clock.rs",
    "Utc::now",
    "`SystemClock` is the one real `Clock`; every other reader of time is given a `Clock`",
)];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    file: String,
    line: usize,
    what: String,
    source: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} in `{}`",
            self.file, self.line, self.what, self.source
        )
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn peek(c: &[char], i: usize) -> char {
    c.get(i).copied().unwrap_or('\0')
}

/// `src` with comments removed and the contents of string and char literals blanked. Every
/// removed character becomes a space (newlines stay), so offsets and lines are unchanged.
fn strip_comments_and_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let prev = if i == 0 { ' ' } else { c[i - 1] };
        if c[i] == '/' && peek(&c, i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && peek(&c, i + 1) == '*' {
            let mut depth = 0usize;
            while i < c.len() {
                if c[i] == '/' && peek(&c, i + 1) == '*' {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && peek(&c, i + 1) == '/' {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (!is_ident(prev) || (prev == 'b' && (i < 2 || !is_ident(c[i - 2]))))
            && matches!(peek(&c, i + 1), '"' | '#')
            && {
                let mut k = i + 1;
                while peek(&c, k) == '#' {
                    k += 1;
                }
                peek(&c, k) == '"'
            }
        {
            // Raw string r#"…"#.
            let mut hashes = 0;
            out.push('r');
            i += 1;
            while c[i] == '#' {
                hashes += 1;
                out.push('#');
                i += 1;
            }
            out.push('"');
            i += 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|h| peek(&c, i + h) == '#') {
                    out.push('"');
                    i += 1;
                    for _ in 0..hashes {
                        out.push('#');
                        i += 1;
                    }
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            if i < c.len() {
                out.push('"');
                i += 1;
            }
        } else if c[i] == '\'' && (peek(&c, i + 1) == '\\' || peek(&c, i + 2) == '\'') {
            // A char literal ('x', '\n', '\'', '\u{1F600}'); otherwise a lifetime.
            out.push('\'');
            i += 1;
            if c[i] == '\\' {
                out.push_str("  ");
                i += 2;
            }
            while i < c.len() && c[i] != '\'' {
                blank(&mut out, c[i]);
                i += 1;
            }
            if i < c.len() {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Blank every item marked `#[cfg(test)]` in comment-free `code`; returns the names of the
/// test modules declared as separate files (`#[cfg(test)] mod tests;`).
fn blank_test_items(code: &mut String) -> Vec<String> {
    const ATTR: &str = "#[cfg(test)]";
    let mut files = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find(ATTR).map(|p| p + from) {
        let c: Vec<(usize, char)> = code[pos..].char_indices().collect();
        let mut idx = c
            .iter()
            .position(|&(o, _)| o == ATTR.len())
            .unwrap_or(c.len());
        // The item runs to the first `;` outside brackets, or to the brace closing its body.
        let (mut parens, mut braces) = (0i32, 0i32);
        let mut end = code.len() - pos;
        while idx < c.len() {
            let (o, ch) = c[idx];
            match ch {
                '(' | '[' => parens += 1,
                ')' | ']' => parens -= 1,
                '{' if parens == 0 => braces += 1,
                '}' if parens == 0 => {
                    braces -= 1;
                    if braces == 0 {
                        end = o + 1;
                        break;
                    }
                }
                ';' if parens == 0 && braces == 0 => {
                    end = o + 1;
                    break;
                }
                _ => {}
            }
            idx += 1;
        }
        let item = &code[pos + ATTR.len()..pos + end];
        let words: Vec<&str> = item
            .split(|ch: char| !is_ident(ch))
            .filter(|w| !w.is_empty())
            .collect();
        if item.trim_end().ends_with(';')
            && let Some(m) = words.iter().position(|w| *w == "mod")
            && let Some(name) = words.get(m + 1)
        {
            files.push(name.to_string());
        }
        // Same length in bytes, so the offsets after it stay valid.
        let blanked: String = code[pos..pos + end]
            .chars()
            .map(|ch| match ch {
                '\n' => "\n".to_string(),
                other => " ".repeat(other.len_utf8()),
            })
            .collect();
        code.replace_range(pos..pos + end, &blanked);
        from = pos + end;
    }
    files
}

/// The code of a source file as the checks see it.
fn code_of(src: &str) -> (String, Vec<String>) {
    let mut code = strip_comments_and_literals(src);
    let test_mods = blank_test_items(&mut code);
    (code, test_mods)
}

/// The non-test `.rs` files under `dir` (relative to the workspace root), with their code: a
/// file declared by its parent as `#[cfg(test)] mod x;` is left out.
fn non_test_sources(dir: &str) -> Vec<(String, String, String)> {
    let mut files: Vec<PathBuf> = rust_files(&root().join(dir));
    files.sort();
    let mut parsed = Vec::new();
    let mut test_paths: Vec<PathBuf> = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap_or_default();
        let (code, test_mods) = code_of(&src);
        let module_dir = match f.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs" | "main.rs" | "mod.rs") => f.parent().map(Path::to_path_buf),
            _ => f
                .parent()
                .map(|p| p.join(f.file_stem().unwrap_or_default())),
        }
        .unwrap_or_default();
        for m in test_mods {
            test_paths.push(module_dir.join(format!("{m}.rs")));
            test_paths.push(module_dir.join(m));
        }
        parsed.push((f.clone(), src, code));
    }
    parsed
        .into_iter()
        .filter(|(f, _, _)| !test_paths.iter().any(|t| f.starts_with(t)))
        .map(|(f, src, code)| {
            let rel = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
            (rel, src, code)
        })
        .collect()
}

/// Offsets where `pat` occurs in `code` as a path (not the tail of a longer identifier; with
/// `path_start`, not after `::` either).
fn path_hits(code: &str, pat: &str, path_start: bool) -> Vec<usize> {
    code.match_indices(pat)
        .map(|(o, _)| o)
        .filter(|&o| {
            let before = code[..o].chars().next_back().unwrap_or(' ');
            let glued = pat.chars().next().is_some_and(is_ident) && is_ident(before);
            let mid_path = path_start && before == ':';
            !(glued || mid_path)
        })
        .filter(|&o| {
            // A pattern that ends in an identifier must end there (`Utc::now` not `Utc::nowx`).
            let ends_ident = pat.chars().next_back().is_some_and(is_ident);
            let after = code[o + pat.len()..].chars().next().unwrap_or(' ');
            !(ends_ident && is_ident(after))
        })
        .collect()
}

/// Offsets of the `static` items of `code` that hold mutable state, with what makes them so.
fn global_state(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for o in path_hits(code, "thread_local!", false) {
        out.push((o, "thread_local!".to_string()));
    }
    for o in path_hits(code, "static", false) {
        let before = code[..o].chars().next_back().unwrap_or(' ');
        let after = code[o + "static".len()..].chars().next().unwrap_or(' ');
        if before == '\'' || !after.is_whitespace() {
            continue; // `'static`
        }
        let decl_end = code[o..].find(['=', ';']).map_or(code.len(), |e| o + e);
        let decl = &code[o..decl_end];
        let words: Vec<&str> = decl.split_whitespace().collect();
        if words.get(1) == Some(&"mut") {
            out.push((o, "global mutable state (`static mut`)".to_string()));
        } else if let Some(m) = INTERIOR_MUTABILITY.iter().find(|m| decl.contains(*m)) {
            out.push((o, format!("global mutable state (`static` holding `{m}`)")));
        }
    }
    out
}

/// The findings of `check` on every non-test source under `dirs` plus the single `files`.
fn scan(
    dirs: &[&str],
    files: &[&str],
    check: impl Fn(&str) -> Vec<(usize, String)>,
) -> Vec<Finding> {
    let mut sources = Vec::new();
    for d in dirs {
        sources.extend(non_test_sources(d));
    }
    for f in files {
        let src = std::fs::read_to_string(root().join(f)).unwrap_or_default();
        let (code, _) = code_of(&src);
        sources.push((f.to_string(), src, code));
    }
    let mut out = Vec::new();
    for (file, src, code) in sources {
        for (offset, what) in check(&code) {
            let line = code[..offset].matches('\n').count() + 1;
            out.push(Finding {
                file: file.clone(),
                line,
                what,
                source: src.lines().nth(line - 1).unwrap_or("").trim().to_string(),
            });
        }
    }
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    out
}

/// `code`'s uses of the impure paths and its global mutable state.
fn impurities(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for pat in IMPURE {
        out.extend(
            path_hits(code, pat, false)
                .into_iter()
                .map(|o| (o, format!("uses `{pat}`"))),
        );
    }
    for pat in IMPURE_PATH_STARTS {
        out.extend(
            path_hits(code, pat, true)
                .into_iter()
                .map(|o| (o, format!("uses `{pat}`"))),
        );
    }
    out.extend(global_state(code));
    out
}

/// Fails with every finding not in [`ALLOWED`], and with every allowance nothing needed.
fn assert_clean(rule: &str, findings: Vec<Finding>, allowed_files: &[&str]) {
    let allowed: Vec<&(&str, &str, &str)> = ALLOWED
        .iter()
        .filter(|(f, _, _)| allowed_files.iter().any(|d| f.starts_with(d)))
        .collect();
    let mut problems: Vec<String> = findings
        .iter()
        .filter(|f| {
            !allowed
                .iter()
                .any(|(file, what, _)| f.file == *file && f.what.contains(what))
        })
        .map(ToString::to_string)
        .collect();
    for (file, what, why) in allowed {
        if !findings
            .iter()
            .any(|f| f.file == *file && f.what.contains(what))
        {
            problems.push(format!(
                "{file}: the allowance for `{what}` ({why}) is no longer needed: remove it from ALLOWED in tests/e2e/tidy.rs"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{rule}\n{}\n(see ARCHITECTURE.md, Invariants)",
        problems.join("\n")
    );
}

/// core, mapping and expr do no I/O, never read the clock, make no ids or random numbers and
/// keep no global mutable state (caches belong to the caller).
#[test]
fn pure_crates_do_no_io_read_no_clock_and_keep_no_global_state() {
    let dirs = ["crates/core/src", "crates/mapping/src", "crates/expr/src"];
    assert_clean(
        "the pure crates must not do I/O, read the clock, make ids/randomness or keep global state:",
        scan(&dirs, &[], impurities),
        &dirs,
    );
}

/// The engine's planning (`plan.rs`) and `diff.rs` are pure and synchronous: everything they
/// need is passed in. Checks whichever of the two files exist.
#[test]
fn engine_planning_and_diff_are_pure_and_synchronous() {
    let files: Vec<&str> = ["crates/engine/src/plan.rs", "crates/engine/src/diff.rs"]
        .into_iter()
        .filter(|f| root().join(f).is_file())
        .collect();
    assert!(
        !files.is_empty(),
        "neither crates/engine/src/plan.rs nor crates/engine/src/diff.rs exists: point this check at the engine's pure planning code"
    );
    let findings = scan(&[], &files, |code| {
        let mut out = impurities(code);
        for o in path_hits(code, ".await", false) {
            out.push((o, "awaits (`.await`)".to_string()));
        }
        for o in path_hits(code, "async", false) {
            out.push((o, "is asynchronous (`async`)".to_string()));
        }
        out
    });
    assert_clean(
        "the engine's planning and diff must be pure and synchronous:",
        findings,
        &files,
    );
}

/// The engine never reads the system clock or makes ids: time comes from the `Clock` it is
/// given, ids from its inputs.
#[test]
fn the_engine_never_reads_the_clock_or_makes_ids() {
    let findings = scan(&["crates/engine/src"], &[], |code| {
        CLOCK_AND_IDS
            .iter()
            .flat_map(|pat| {
                path_hits(code, pat, false)
                    .into_iter()
                    .map(move |o| (o, format!("uses `{pat}`")))
            })
            .collect()
    });
    assert_clean(
        "the engine must get time and ids from its inputs:",
        findings,
        &["crates/engine/src"],
    );
}

/// The scanner itself: comments, literals and test code are not code; real uses are found on
/// their line.
#[test]
fn the_tidy_scanner_sees_only_non_test_code() {
    let src = r##"//! Uses Utc::now in a doc.
use std::time::Duration; // SystemTime::now in a comment
/* block SystemTime::now /* nested Utc::now */ */
fn a() -> &'static str { "Utc::now() in a string" }
fn b() -> char { '"' }
fn c() -> &'static str { r#"std::fs "quoted" "# }
fn d() { let _ = chrono::Utc::now(); }
static CACHE: OnceLock<Mutex<u8>> = OnceLock::new();
static RE: LazyLock<Regex> = LazyLock::new(|| Regex::new("x").unwrap());
fn e() { let _ = operand::x(); let _ = fs::read("x"); let _ = std::fs::read("y"); }
#[cfg(test)]
mod tests {
    fn t() { let _ = std::time::SystemTime::now(); let _ = '{'; }
}
fn f() { let _ = uuid::Uuid::new_v4(); }
#[cfg(test)]
mod more_tests;
"##;
    let (code, test_mods) = code_of(src);
    assert_eq!(code.lines().count(), src.lines().count());
    assert_eq!(test_mods, vec!["more_tests".to_string()]);
    let mut got: Vec<(usize, String)> = impurities(&code)
        .into_iter()
        .map(|(o, what)| (code[..o].matches('\n').count() + 1, what))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (7, "uses `Utc::now`".to_string()),
            (
                8,
                "global mutable state (`static` holding `Mutex`)".to_string()
            ),
            (10, "uses `fs::`".to_string()),
            (10, "uses `std::fs`".to_string()),
            (15, "uses `Uuid::new_v4`".to_string()),
        ]
    );
}

/// The methods of `StateStore`, provided ones included.
fn state_store_methods() -> Vec<String> {
    let src = std::fs::read_to_string(root().join("crates/core/src/state.rs")).unwrap();
    let start = src.find("pub trait StateStore").expect("the trait");
    let body = &src[start..start + src[start..].find("\n}\n").expect("its end")];
    body.lines()
        .filter_map(|l| l.strip_prefix("    fn "))
        .map(|l| l.split(['(', '<']).next().unwrap().to_string())
        .collect()
}

#[test]
fn every_state_store_wrapper_forwards_every_method() {
    // A provided method left to its default in a delegating wrapper runs the per-id fallback
    // instead of the backend's batched override (one PostgreSQL round trip per object).
    let methods = state_store_methods();
    assert!(methods.len() > 15 && methods.iter().any(|m| m == "targets_many"));
    for file in [
        "crates/cli/src/store_select.rs",
        "benches/store_backends.rs",
    ] {
        let src = std::fs::read_to_string(root().join(file)).unwrap();
        let start = src.find("StateStore for ").expect("a StateStore impl");
        let body = &src[start..start + src[start..].find("\n}\n").expect("its end")];
        let missing: Vec<&String> = methods
            .iter()
            .filter(|m| !body.contains(&format!("fn {m}(")))
            .collect();
        assert!(missing.is_empty(), "{file} does not forward {missing:?}");
    }
}
