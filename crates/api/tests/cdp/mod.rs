//! A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe` (NUL-separated
//! JSON on file descriptors 3 and 4), so a test can drive headless Chromium — click, type,
//! read the DOM — without a WebSocket crate or a driver binary. `sh` wires the two pipes to
//! the browser's descriptors 3 and 4.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub struct Browser {
    child: Child,
    input: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
}

impl Browser {
    /// Start headless Chromium with its own profile, `env` added to its environment.
    pub fn launch(bin: &Path, profile: &Path, env: &[(&str, &str)]) -> Browser {
        let mut child = Command::new("sh")
            .arg("-c")
            // Descriptor 3 reads our stdin pipe, 4 writes to our stdout pipe.
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(bin)
            .args([
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,1400",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let input = child.stdin.take().unwrap();
        let output = child.stdout.take().unwrap();
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(output);
            let mut buf = Vec::new();
            while let Ok(n) = r.read_until(0, &mut buf) {
                if n == 0 {
                    break;
                }
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    break;
                }
                buf.clear();
            }
        });
        Browser {
            child,
            input,
            messages,
            next_id: 0,
            session: None,
        }
    }

    /// One command; its `result`, or a panic with the protocol's error.
    pub fn send(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).unwrap();
        self.input.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(v) if v["id"] == json!(id) => {
                    assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                    return v["result"].clone();
                }
                Ok(_) => {} // an event
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer from chromium"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium went away"),
            }
        }
    }

    /// Open a tab on `about:blank` and talk to it from now on.
    pub fn open_tab(&mut self) {
        let t = self.send("Target.createTarget", json!({"url": "about:blank"}));
        let target = t["targetId"].as_str().unwrap().to_string();
        let a = self.send(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        self.session = Some(a["sessionId"].as_str().unwrap().to_string());
        self.send("Page.enable", json!({}));
        self.send("Runtime.enable", json!({}));
    }

    /// Downloads go to `dir` (a browser-wide setting, sent outside the tab's session).
    pub fn allow_downloads(&mut self, dir: &Path) {
        let session = self.session.take();
        self.send(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": dir.display().to_string()}),
        );
        self.session = session;
    }

    pub fn navigate(&mut self, url: &str) {
        self.send("Page.navigate", json!({"url": url}));
    }

    /// Evaluate `js` in the page (promises awaited); its value.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.send(
            "Runtime.evaluate",
            json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(
            r["exceptionDetails"].is_null(),
            "{js}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Click `selector` and wait for `js`; when it has not come after a while, click once more.
    /// Only for idempotent actions: on a loaded machine a re-render between locating the
    /// button and the mouse event can move it, and the click lands elsewhere.
    pub fn click_expecting(&mut self, selector: &str, js: &str, what: &str) {
        self.click(selector);
        if !self.wait_for(js, Duration::from_secs(8)) {
            self.click(selector);
        }
        self.wait(js, what);
    }

    /// Whether `js` becomes truthy within `limit`.
    pub fn wait_for(&mut self, js: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let guarded =
            format!("(() => {{ try {{ return ({js}); }} catch (e) {{ return null; }} }})()");
        loop {
            let v = self.eval(&guarded);
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `js` is truthy; panics with `what` and the page's state after 30 s.
    pub fn wait(&mut self, js: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        // While the page loads, the expression may throw: that is "not yet".
        let guarded =
            format!("(() => {{ try {{ return ({js}); }} catch (e) {{ return null; }} }})()");
        loop {
            let v = self.eval(&guarded);
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if Instant::now() > deadline {
                let body = self.eval("document.body.innerText");
                panic!("timed out waiting for {what}; the page shows:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Click the element `selector` names, as a user would (its centre, real mouse events).
    pub fn click(&mut self, selector: &str) {
        let js = format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             const x = r.left + r.width / 2, y = r.top + r.height / 2; \
             const hit = document.elementFromPoint(x, y); \
             return [x, y, e.disabled === true || !(hit && (hit === e || e.contains(hit)))]; }})()",
            sel = json!(selector)
        );
        let at = self.wait(
            &format!("(() => {{ const v = {js}; return v && !v[2] ? v : null; }})()"),
            // Enabled and not covered: a re-render under load must not take the click.
            &format!("{selector} to be there, enabled and on top"),
        );
        let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.send(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Put `text` into the input `selector` names.
    pub fn fill(&mut self, selector: &str, text: &str) {
        self.click(selector);
        self.eval(&format!(
            "document.querySelector({}).value = ''",
            json!(selector)
        ));
        self.send("Input.insertText", json!({"text": text}));
    }

    /// The text of the element `selector` names ("" when absent).
    pub fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "(document.querySelector({}) || {{}}).innerText || ''",
            json!(selector)
        ))
        .as_str()
        .unwrap_or("")
        .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask first, so the browser's helper processes go with it.
        let _ = self
            .input
            .write_all(b"{\"id\":999999,\"method\":\"Browser.close\",\"params\":{}}\0");
        let _ = self.input.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
