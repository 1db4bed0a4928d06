//! Issue 15: the README's "Add an app" path typed into a real terminal (tmux), with the new
//! flags: `init` names the job after its file, every later command finds it by
//! `--job NAME --config-dir DIR`, a preview with nothing to do says "No changes.", `status`
//! speaks in minutes, and `restart --scope full` asks before forgetting the links.
//! SKIPPED when tmux is not installed.

use crate::support::*;
use scimsync_testkit::graph::{GraphEmulator, Tenant};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own (`-L`), so nothing else on the machine is touched.
struct Terminal {
    socket: String,
    sent: usize,
}

impl Terminal {
    fn start(env: &[(&str, &str)]) -> Option<Terminal> {
        let socket = format!("scimsync-e2e-{}", std::process::id());
        let mut cmd = Command::new("tmux");
        cmd.args([
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
        ])
        .args(["-x", "250", "-y", "60"]);
        for (k, v) in env {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        cmd.arg("bash --norc --noprofile");
        match cmd.status() {
            Ok(s) if s.success() => Some(Terminal { socket, sent: 0 }),
            _ => None,
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", "t", "-S", "-2000"])
    }

    fn keys(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", keys]);
        self.tmux(&["send-keys", "-t", "t", "Enter"]);
    }

    /// Wait until the screen shows `text`; the screen.
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "waited for {text:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Type a command; its output and exit code once it is done.
    fn run(&mut self, command: &str) -> (String, i32) {
        self.sent += 1;
        let n = self.sent;
        self.tmux(&["clear-history", "-t", "t"]);
        self.keys("clear");
        // The marker is typed split, so only the shell's output matches it.
        self.keys(&format!("{command}; echo \"END\"\"{n} rc=$?\""));
        let screen = self.wait_for(&format!("END{n} rc="));
        let rc = screen
            .split(&format!("END{n} rc="))
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(-1);
        (screen, rc)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_an_app_in_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED: tmux is not installed");
        return;
    }
    let graph = GraphEmulator::start(Tenant::generate("contoso.onmicrosoft.com", 6, 2, 7))
        .await
        .expect("graph emulator");
    let server = Scim2Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let jobs = dir.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    let bin = env!("CARGO_BIN_EXE_scimsync");
    let jobs_s = jobs.to_str().unwrap();
    let state = dir.path().join("state");
    let state_s = state.to_str().unwrap();
    let env = [
        ("GRAPH_CLIENT_SECRET", graph.client_secret()),
        ("SCIM_APP_TOKEN", server.token()),
    ];
    let Some(mut term) = Terminal::start(&env) else {
        eprintln!("SKIPPED: tmux could not start a session");
        return;
    };
    let by_name = format!("--job contoso --config-dir {jobs_s}");

    let (screen, rc) = term.run(&format!(
        "{bin} init --app scim --out {jobs_s}/contoso.toml --tenant-id {} --client-id {} \
         --service-principal-id {} --tenant-url {} --graph-url {g} --login-url {g}",
        graph.tenant_id(),
        graph.client_id(),
        graph.service_principal_id(),
        server.base(),
        g = graph.url(),
    ));
    assert_eq!(rc, 0, "{screen}");
    assert!(screen.contains("job name: contoso"), "{screen}");

    let (screen, rc) = term.run(&format!("{bin} validate {by_name}"));
    assert_eq!(rc, 0, "{screen}");
    assert!(screen.contains("valid job \"contoso\""), "{screen}");

    std::fs::write(
        dir.path().join("ada.json"),
        r#"{"userPrincipalName": "ada@contoso.com", "givenName": "Ada", "surname": "Lovelace"}"#,
    )
    .unwrap();
    let (screen, rc) = term.run(&format!(
        "{bin} eval {by_name} --user-file {} --expression 'Join(\" \", [givenName], [surname])'",
        dir.path().join("ada.json").display()
    ));
    assert_eq!(rc, 0, "{screen}");
    assert!(screen.contains("result: \"Ada Lovelace\""), "{screen}");

    let (screen, rc) = term.run(&format!("{bin} preview {by_name} --state {state_s}"));
    assert_eq!(rc, 0, "{screen}");
    assert!(screen.contains("POST /Users"), "{screen}");

    let (screen, rc) = term.run(&format!("{bin} run --once {by_name} --state {state_s}"));
    assert_eq!(rc, 0, "{screen}");
    assert!(screen.contains("of job contoso finished"), "{screen}");

    let (screen, rc) = term.run(&format!("{bin} preview {by_name} --state {state_s}"));
    assert_eq!(rc, 0, "{screen}");
    assert!(screen.contains("No changes."), "{screen}");

    let (screen, rc) = term.run(&format!("{bin} status {by_name} --state {state_s}"));
    assert_eq!(rc, 0, "{screen}");
    assert!(
        screen.contains("just now)") || screen.contains(" s ago)"),
        "{screen}"
    );

    // restart --scope full asks; "n" resets nothing, "y" goes ahead.
    for (answer, expected, code) in [
        ("n", "not confirmed: nothing was reset", 1),
        ("y", "job contoso restarted", 0),
    ] {
        term.sent += 1;
        let n = term.sent;
        term.tmux(&["clear-history", "-t", "t"]);
        term.keys("clear");
        term.keys(&format!(
            "{bin} restart {by_name} --state {state_s} --scope full; echo \"END\"\"{n} rc=$?\""
        ));
        term.wait_for("with scope full? [y/N]");
        term.keys(answer);
        let screen = term.wait_for(&format!("END{n} rc="));
        assert!(screen.contains(expected), "{screen}");
        assert!(screen.contains(&format!("END{n} rc={code}")), "{screen}");
    }
}
