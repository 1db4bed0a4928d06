//! Asking before `restart --scope full`, which forgets every link: the next cycle matches
//! every object again. `--yes` skips the question; without a terminal to ask on and without
//! `--yes`, nothing is reset.

use std::io::{BufRead, IsTerminal, Write};

/// Whether the restart may go on; `Err(code)` when it must not (the reason printed).
pub fn full_restart(job: &str, scopes: &[String], yes: bool) -> Result<(), u8> {
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    full_restart_with(
        job,
        scopes,
        yes,
        terminal,
        &mut std::io::stdin().lock(),
        &mut std::io::stderr().lock(),
    )
}

fn is_full(scopes: &[String]) -> bool {
    scopes
        .iter()
        .flat_map(|s| s.split(','))
        .any(|s| s.trim().eq_ignore_ascii_case("full"))
}

pub(crate) fn full_restart_with(
    job: &str,
    scopes: &[String],
    yes: bool,
    terminal: bool,
    input: &mut dyn BufRead,
    err: &mut dyn Write,
) -> Result<(), u8> {
    if yes || !is_full(scopes) {
        return Ok(());
    }
    let what = format!(
        "--scope full forgets every link, escrow and held deletion of job {job}: the next cycle \
         matches every object again"
    );
    if !terminal {
        let _ = writeln!(
            err,
            "error: {what}. Not on a terminal, so nothing was reset: add --yes to confirm."
        );
        return Err(1);
    }
    let _ = write!(err, "{what}.\nRestart job {job} with scope full? [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    let _ = input.read_line(&mut answer);
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        let _ = writeln!(err, "not confirmed: nothing was reset");
        Err(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(scopes: &[&str], yes: bool, terminal: bool, answer: &str) -> (Result<(), u8>, String) {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let mut err = Vec::new();
        let r = full_restart_with(
            "app",
            &scopes,
            yes,
            terminal,
            &mut answer.as_bytes(),
            &mut err,
        );
        (r, String::from_utf8(err).unwrap())
    }

    #[test]
    fn full_asks_on_a_terminal_and_refuses_without_one() {
        // Other scopes never ask.
        assert_eq!(ask(&["watermark", "escrows"], false, false, "").0, Ok(()));
        // --yes skips the question anywhere.
        assert_eq!(ask(&["full"], true, false, "").0, Ok(()));
        let (r, err) = ask(&["watermark,full"], false, false, "");
        assert_eq!(r, Err(1));
        assert!(err.contains("add --yes to confirm"), "{err}");
        assert!(err.contains("nothing was reset"), "{err}");
        let (r, err) = ask(&["full"], false, true, "y\n");
        assert_eq!(r, Ok(()));
        assert!(
            err.ends_with("Restart job app with scope full? [y/N] "),
            "{err}"
        );
        let (r, err) = ask(&["full"], false, true, "\n");
        assert_eq!(r, Err(1));
        assert!(err.contains("not confirmed: nothing was reset"), "{err}");
    }
}
