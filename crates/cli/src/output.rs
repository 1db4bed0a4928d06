//! Standard output that survives a closed pipe: `scimsync logs | head -1` closes stdout
//! early, and `println!` would panic on the first write after that. Here the write error is
//! remembered and later output is dropped, so the command ends normally (its state written,
//! its exit code kept).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write to stdout; after the reader went away, nothing.
pub(crate) fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    // Any write error means nobody reads any more; there is nowhere to report it.
    if out.write_fmt(args).and_then(|()| out.flush()).is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `print!` to stdout, quiet on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

/// `println!` to stdout, quiet on a closed pipe.
macro_rules! outln {
    () => {
        $crate::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A backstop for the modules that still use `println!` (serve, demo): a panic that is only
/// "stdout is a closed pipe" ends the process quietly instead of printing a panic.
pub(crate) fn quiet_broken_pipe_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if payload.starts_with("failed printing to stdout") && payload.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
