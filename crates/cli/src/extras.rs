//! `scimsync completions SHELL` and `scimsync man`: generated from the same clap definition
//! the commands parse with, so they never fall behind the flags.

use clap_complete::Shell;

/// Print the completion script for `shell`.
pub fn completions(shell: Shell) -> u8 {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut crate::command(), "scimsync", &mut buf);
    out!("{}", String::from_utf8_lossy(&buf));
    0
}

/// Print the man page (roff) of `scimsync`, its subcommands included.
pub fn man() -> u8 {
    match man_page() {
        Ok(text) => {
            out!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: cannot render the man page: {e}");
            1
        }
    }
}

fn man_page() -> std::io::Result<String> {
    let cmd = crate::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    // One page: each subcommand as a section after the main one.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub = sub
            .clone()
            .display_name(format!("scimsync-{}", sub.get_name()))
            .bin_name(format!("scimsync {}", sub.get_name()));
        let mut page = Vec::new();
        let man = clap_mangen::Man::new(sub);
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
        buf.extend_from_slice(&page);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_page_name_every_command() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut crate::command(), "scimsync", &mut buf);
            let text = String::from_utf8(buf).unwrap();
            for word in [
                "approve-deletions",
                "test-connection",
                "--config-dir",
                "--user-file",
            ] {
                assert!(text.contains(word), "{shell:?} lacks {word}");
            }
        }
        let page = man_page().unwrap();
        assert!(
            page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH scimsync"),
            "{page}"
        );
        assert!(
            page.contains("scimsync\\-restart"),
            "{}",
            &page[..400.min(page.len())]
        );
        assert!(page.contains("\\-\\-yes"), "restart's --yes is documented");
    }
}
