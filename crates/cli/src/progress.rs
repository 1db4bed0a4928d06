//! Progress for `run` and `preview`: an indicatif bar when stderr is a terminal, plain lines
//! (every 10 % or 5 s) when it is not, so logs of scheduled runs stay readable. Everything goes
//! to stderr: `--json` output on stdout is untouched.

use indicatif::{ProgressBar, ProgressStyle};
use scimsync_engine::{Progress, ProgressSink};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Plain lines at most this often, unless the share done moved by a tenth.
const LINE_EVERY: Duration = Duration::from_secs(5);

enum Mode {
    Bar(Option<ProgressBar>),
    Lines {
        last_at: Option<Instant>,
        last_tenth: usize,
    },
}

/// A [`ProgressSink`] for the command line.
pub struct CliProgress {
    what: &'static str,
    state: Mutex<(Mode, &'static str)>,
}

impl CliProgress {
    /// `what` names the work (`"cycle"`, `"preview"`).
    pub fn new(what: &'static str) -> Self {
        Self::with_terminal(what, std::io::stderr().is_terminal())
    }

    fn with_terminal(what: &'static str, terminal: bool) -> Self {
        let mode = if terminal {
            Mode::Bar(None)
        } else {
            Mode::Lines {
                last_at: None,
                last_tenth: 0,
            }
        };
        CliProgress {
            what,
            state: Mutex::new((mode, "")),
        }
    }

    /// Clear the bar before the report is printed; the next cycle starts a new one.
    pub fn finish(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &mut st.0 {
            Mode::Bar(bar) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
            Mode::Lines {
                last_at,
                last_tenth,
            } => {
                *last_at = None;
                *last_tenth = 0;
            }
        }
        st.1 = "";
    }

    /// The line printed when stderr is not a terminal, if one is due.
    fn line(&self, p: Progress, now: Instant) -> Option<String> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let new_phase = st.1 != p.phase;
        st.1 = p.phase;
        let what = self.what;
        match &mut st.0 {
            Mode::Bar(bar) => {
                let b = bar.get_or_insert_with(|| {
                    let b = ProgressBar::new(p.total as u64);
                    if let Ok(style) = ProgressStyle::with_template(
                        "{prefix:>12} [{bar:40}] {pos}/{len} ({percent}%) eta {eta}",
                    ) {
                        b.set_style(style.progress_chars("=> "));
                    }
                    b.enable_steady_tick(Duration::from_millis(200));
                    b
                });
                if new_phase {
                    b.set_prefix(format!("{what} {}", p.phase));
                    b.reset_eta();
                }
                b.set_length(p.total as u64);
                b.set_position(p.done as u64);
                None
            }
            Mode::Lines {
                last_at,
                last_tenth,
            } => {
                let tenth = (p.done * 10).checked_div(p.total).unwrap_or(0);
                let due = new_phase
                    || tenth > *last_tenth
                    || last_at.is_none_or(|t| now.duration_since(t) >= LINE_EVERY)
                    || (p.done == p.total && p.total > 0 && tenth != *last_tenth);
                if new_phase {
                    *last_tenth = tenth;
                }
                if !due {
                    return None;
                }
                *last_tenth = tenth;
                *last_at = Some(now);
                let pct = (p.done * 100).checked_div(p.total).unwrap_or(100);
                Some(format!(
                    "{what}: {} {}/{} ({pct}%)",
                    p.phase, p.done, p.total
                ))
            }
        }
    }
}

impl ProgressSink for CliProgress {
    fn progress(&self, p: Progress) {
        if let Some(l) = self.line(p, Instant::now()) {
            eprintln!("{l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_every_tenth_or_five_seconds() {
        let sink = CliProgress::with_terminal("cycle", false);
        let t0 = Instant::now();
        let p = |done| Progress {
            phase: "users",
            done,
            total: 1000,
        };
        let mut lines = Vec::new();
        for done in 1..=1000 {
            lines.extend(sink.line(p(done), t0));
        }
        // The first report, then one per tenth.
        assert_eq!(lines.len(), 11, "{lines:?}");
        assert_eq!(lines[0], "cycle: users 1/1000 (0%)");
        assert_eq!(lines[10], "cycle: users 1000/1000 (100%)");
        // Slow progress still prints every five seconds.
        assert!(sink.line(p(1000), t0 + LINE_EVERY).is_some());
        // A new phase always prints.
        let g = Progress {
            phase: "groups",
            done: 0,
            total: 3,
        };
        assert_eq!(
            sink.line(g, t0 + LINE_EVERY).as_deref(),
            Some("cycle: groups 0/3 (0%)")
        );
    }
}
