//! [`JobConfig::fingerprint`]: a stable hash of what decides who is in scope and what the
//! target should hold, so the engine can re-evaluate everyone when it changes (Entra restarts
//! with a full cycle when mappings or scoping filters are saved, reference §2.1).

use crate::{Apply, JobConfig, Mapping, MappingValue, Nested, ScopeSetting, ScopingFilter};
use sha2::{Digest, Sha256};

impl JobConfig {
    /// Hex SHA-256 over the user and group mappings and scoping filters, the scope (setting
    /// and service principal), `exclude_default_access`, and whether (and how) groups are
    /// provisioned. Secrets, URLs, schedules, line numbers and filter names are left out: they
    /// change nothing about the mapped representation, so editing them forces no full cycle.
    pub fn fingerprint(&self) -> String {
        let mut h = Fields(Sha256::new());
        h.put("v1");
        let src = &self.source;
        h.put(match src.scope {
            ScopeSetting::All => "scope=all",
            ScopeSetting::Assigned => "scope=assigned",
        });
        h.put(src.service_principal_id.as_deref().unwrap_or(""));
        h.put(if src.exclude_default_access {
            "exclude_default_access"
        } else {
            "include_default_access"
        });
        h.put("users");
        mappings(&mut h, &self.users.mappings);
        filters(&mut h, &self.users.scoping);
        h.put("groups");
        h.put(if self.groups.enabled { "on" } else { "off" });
        h.put(match self.groups.nested {
            Nested::Ignore => "nested=ignore",
            Nested::Include => "nested=include",
        });
        mappings(&mut h, &self.groups.mappings);
        filters(&mut h, &self.groups.scoping);
        h.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Length-prefixed fields, so ("ab","c") and ("a","bc") hash differently.
struct Fields(Sha256);

impl Fields {
    fn put(&mut self, s: &str) {
        self.0.update((s.len() as u64).to_le_bytes());
        self.0.update(s.as_bytes());
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.put("-"),
            Some(s) => {
                self.put("+");
                self.put(s);
            }
        }
    }
}

fn mappings(h: &mut Fields, list: &[Mapping]) {
    h.put(&list.len().to_string());
    for m in list {
        h.put(&m.target);
        match &m.value {
            MappingValue::Direct { source } => {
                h.put("direct");
                h.put(source);
            }
            MappingValue::Constant { value } => {
                h.put("constant");
                h.put(value);
            }
            MappingValue::Expression { text } => {
                h.put("expression");
                h.put(text);
            }
            MappingValue::None => h.put("none"),
        }
        h.opt(m.matching.map(|n| n.to_string()).as_deref());
        h.put(match m.apply {
            Apply::Always => "always",
            Apply::CreateOnly => "create",
        });
        h.opt(m.default.as_deref());
        h.put(if m.required { "required" } else { "optional" });
    }
}

fn filters(h: &mut Fields, list: &[ScopingFilter]) {
    h.put(&list.len().to_string());
    for f in list {
        h.put(&f.clauses.len().to_string());
        for c in &f.clauses {
            h.put(&c.attribute);
            h.put(c.operator.as_str());
            h.opt(c.value.as_deref());
        }
    }
}
