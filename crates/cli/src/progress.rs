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
    /// The phases already finished in this cycle and their counts ("users 300/300").
    done: Mutex<Vec<String>>,
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
            done: Mutex::new(Vec::new()),
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
        self.done.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// What the bar shows after its counts: the phases finished before this one.
    fn finished_phases(&self, previous: &str, last: Option<(u64, u64)>) -> String {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((pos, len)) = last.filter(|_| !previous.is_empty()) {
            done.push(format!("{previous} {pos}/{len}"));
        }
        if done.is_empty() {
            String::new()
        } else {
            format!("(done: {})", done.join(", "))
        }
    }

    /// The line printed when stderr is not a terminal, if one is due.
    fn line(&self, p: Progress, now: Instant) -> Option<String> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let new_phase = st.1 != p.phase;
        let previous = st.1;
        st.1 = p.phase;
        let what = self.what;
        match &mut st.0 {
            Mode::Bar(bar) => {
                let last = bar
                    .as_ref()
                    .map(|b| (b.position(), b.length().unwrap_or(0)));
                let b = bar.get_or_insert_with(|| {
                    let b = ProgressBar::new(p.total as u64);
                    if let Ok(style) = ProgressStyle::with_template(
                        "{prefix:>16} [{bar:40}] {pos}/{len} ({percent}%) eta {eta} {msg}",
                    ) {
                        b.set_style(style.progress_chars("=> "));
                    }
                    b.enable_steady_tick(Duration::from_millis(200));
                    b
                });
                if new_phase {
                    b.set_prefix(format!("{what} {}", p.phase));
                    b.set_message(self.finished_phases(previous, last));
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

    /// Issue 15: the bar names its phase and keeps the counts of the phases before it.
    #[test]
    fn the_bar_keeps_the_counts_of_finished_phases() {
        let sink = CliProgress::with_terminal("cycle", true);
        let t0 = Instant::now();
        let users = |done| Progress {
            phase: "users",
            done,
            total: 300,
        };
        sink.line(users(1), t0);
        sink.line(users(300), t0);
        sink.line(
            Progress {
                phase: "groups",
                done: 1,
                total: 4,
            },
            t0,
        );
        let st = sink.state.lock().unwrap();
        let Mode::Bar(Some(bar)) = &st.0 else {
            panic!("no bar")
        };
        assert_eq!(bar.prefix(), "cycle groups");
        assert_eq!(bar.message(), "(done: users 300/300)");
        assert_eq!((bar.position(), bar.length()), (1, Some(4)));
        drop(st);
        sink.finish();
        assert!(sink.done.lock().unwrap().is_empty());
    }
}
