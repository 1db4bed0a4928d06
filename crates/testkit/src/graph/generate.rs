//! Deterministic tenant generator: realistic users, department groups with members, managers,
//! and an app with a subset of users and groups assigned.
//!
//! Uses its own SplitMix64 so a seed gives the same tenant on every platform and every version
//! of our dependencies (`rand`'s `StdRng` makes no such promise).

use chrono::DateTime;
use serde_json::{Map, Value, json};

use super::model::{App, Directory, assignment_id, iso, iso7};

struct Rng(u64);

impl Rng {
    fn new(seed: u64, domain: &str) -> Rng {
        // FNV-1a of the domain, so two tenants with one seed still differ.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in domain.to_ascii_lowercase().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(seed ^ h)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, s: &'a [T]) -> &'a T {
        &s[self.below(s.len())]
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }
    fn guid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.bytes::<16>())
            .into_uuid()
            .to_string()
    }
    /// A timestamp between 2019-01-01 and roughly 2024-06.
    fn timestamp(&mut self) -> DateTime<chrono::Utc> {
        let secs = 1_546_300_800 + (self.next() % 170_000_000) as i64;
        let nanos = (self.next() % 1_000_000_000) as u32;
        DateTime::from_timestamp(secs, nanos).unwrap_or_default()
    }
}

const GIVEN: &[&str] = &[
    "Adele",
    "Alex",
    "Allan",
    "Bianca",
    "Brian",
    "Cameron",
    "Christie",
    "Debra",
    "Delia",
    "Diego",
    "Emily",
    "Enrico",
    "Grady",
    "Henrietta",
    "Irvin",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Mallory",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Raul",
    "Sanjay",
    "Sofia",
    "Tomás",
    "Amara",
    "Björn",
    "Chen",
    "Daniela",
    "Farah",
    "Hiroshi",
    "Ingrid",
    "José",
    "Kwame",
    "Léa",
    "Mateo",
    "Nadia",
    "Olusegun",
    "Priya",
    "Siobhan",
    "Yusuf",
    "Zoë",
    "Aino",
    "Ravi",
];

const SURNAMES: &[&str] = &[
    "Vance",
    "Wilber",
    "Deyoung",
    "Pisani",
    "Johnson",
    "White",
    "Cline",
    "Berger",
    "Dennis",
    "Siciliani",
    "Braun",
    "Rossi",
    "Archie",
    "Cerrato",
    "Bellows",
    "Langer",
    "Lauer",
    "Sherman",
    "Adams",
    "Holloway",
    "Robbins",
    "Cortez",
    "Bowen",
    "Graham",
    "Wilke",
    "Fernandez",
    "Gupta",
    "Ortega",
    "Kumar",
    "Nilsson",
    "O'Brien",
    "Müller",
    "Okafor",
    "Tanaka",
    "Dubois",
    "García",
    "Kowalski",
    "Haddad",
    "Virtanen",
    "Mensah",
    "Schmidt",
    "Novák",
    "Costa",
    "Murphy",
    "Yilmaz",
];

/// (department, division, job titles)
const DEPARTMENTS: &[(&str, &str, &[&str])] = &[
    (
        "Engineering",
        "R&D",
        &[
            "Software Engineer",
            "Senior Software Engineer",
            "Engineering Manager",
            "SRE",
        ],
    ),
    (
        "Sales",
        "Commercial",
        &["Account Executive", "Sales Manager", "Sales Engineer"],
    ),
    (
        "Marketing",
        "Commercial",
        &[
            "Marketing Specialist",
            "Content Strategist",
            "Product Marketing Manager",
        ],
    ),
    (
        "Finance",
        "Operations",
        &["Accountant", "Financial Analyst", "Controller"],
    ),
    (
        "Human Resources",
        "Operations",
        &["HR Generalist", "Recruiter", "HR Business Partner"],
    ),
    (
        "IT",
        "Operations",
        &[
            "Systems Administrator",
            "Helpdesk Analyst",
            "Identity Architect",
        ],
    ),
    ("Legal", "Corporate", &["Counsel", "Paralegal"]),
    (
        "Support",
        "Commercial",
        &["Support Engineer", "Customer Success Manager"],
    ),
];

/// (city, state, country, usageLocation, preferredLanguage, phone prefix, street)
type Location = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const LOCATIONS: &[Location] = &[
    (
        "Redmond",
        Some("WA"),
        "United States",
        "US",
        "en-US",
        "+1 425 555",
        "One Microsoft Way",
    ),
    (
        "New York",
        Some("NY"),
        "United States",
        "US",
        "en-US",
        "+1 212 555",
        "11 Times Sq",
    ),
    (
        "London",
        None,
        "United Kingdom",
        "GB",
        "en-GB",
        "+44 20 7946",
        "2 Kingdom St",
    ),
    (
        "Berlin",
        None,
        "Germany",
        "DE",
        "de-DE",
        "+49 30 901820",
        "Unter den Linden 17",
    ),
    (
        "Paris",
        None,
        "France",
        "FR",
        "fr-FR",
        "+33 1 70 18",
        "37 Quai du Président Roosevelt",
    ),
    (
        "São Paulo",
        Some("SP"),
        "Brazil",
        "BR",
        "pt-BR",
        "+55 11 5504",
        "Av. Pres. Juscelino Kubitschek 1909",
    ),
    (
        "Tokyo",
        None,
        "Japan",
        "JP",
        "ja-JP",
        "+81 3 4332",
        "2-16-3 Konan",
    ),
    (
        "Bangalore",
        Some("KA"),
        "India",
        "IN",
        "en-IN",
        "+91 80 6658",
        "Embassy Golf Links",
    ),
];

/// ASCII mail nickname from a name: lower-case, accents folded, other characters dropped.
fn nickname(given: &str, surname: &str) -> String {
    let fold = |s: &str| -> String {
        s.chars()
            .filter_map(|c| {
                let c = match c {
                    'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
                    'é' | 'è' | 'ê' | 'ë' => 'e',
                    'í' | 'ï' => 'i',
                    'ó' | 'ö' | 'ô' => 'o',
                    'ú' | 'ü' => 'u',
                    'ç' => 'c',
                    'ñ' => 'n',
                    'š' => 's',
                    'ž' => 'z',
                    c => c.to_ascii_lowercase(),
                };
                c.is_ascii_alphanumeric().then_some(c)
            })
            .collect()
    };
    let given = given.to_lowercase();
    let surname = surname.to_lowercase();
    format!("{}.{}", fold(&given), fold(&surname))
}

fn company(domain: &str) -> String {
    let first = domain.split('.').next().unwrap_or(domain);
    let mut c = first.to_string();
    if let Some(h) = c.get_mut(0..1) {
        h.make_ascii_uppercase();
    }
    c
}

fn secret(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";
    let mut s = String::new();
    for i in 0..40 {
        if i == 3 {
            s.push_str("8Q~");
            continue;
        }
        s.push(*rng.pick(CHARS) as char);
    }
    s.truncate(40);
    s
}

pub(crate) fn generate(domain: &str, n: usize, groups: usize, seed: u64) -> Directory {
    let mut rng = Rng::new(seed, domain);
    let company = company(domain);
    let tenant_guid = rng.guid();
    let app = App {
        display_name: format!("{company} SCIM provisioning (scimsync)"),
        app_id: rng.guid(),
        client_secret: secret(&mut rng),
        service_principal_id: rng.guid(),
        app_roles: Vec::new(),
        certificates: Vec::new(),
    };
    let mut dir = Directory::new(domain, tenant_guid, app);

    let mut used_nicks = std::collections::HashSet::new();
    let mut by_dept: Vec<Vec<String>> = vec![Vec::new(); DEPARTMENTS.len()];
    let mut user_ids = Vec::with_capacity(n);
    for i in 0..n {
        let given = *rng.pick(GIVEN);
        let surname = *rng.pick(SURNAMES);
        let base = nickname(given, surname);
        let mut nick = base.clone();
        let mut k = 2;
        while !used_nicks.insert(nick.clone()) {
            nick = format!("{base}{k}");
            k += 1;
        }
        let upn = format!("{nick}@{domain}");
        let dept_ix = rng.below(DEPARTMENTS.len());
        let (dept, division, titles) = DEPARTMENTS[dept_ix];
        let head = by_dept[dept_ix].is_empty();
        let title = if head {
            format!("Head of {dept}")
        } else {
            (*rng.pick(titles)).to_string()
        };
        let (city, state, country, usage, lang, phone, street) = *rng.pick(LOCATIONS);

        let mut u = Map::new();
        u.insert("id".into(), json!(rng.guid()));
        u.insert("userPrincipalName".into(), json!(upn));
        u.insert("displayName".into(), json!(format!("{given} {surname}")));
        u.insert("givenName".into(), json!(given));
        u.insert("surname".into(), json!(surname));
        u.insert("mailNickname".into(), json!(nick));
        if !rng.chance(4) {
            u.insert("mail".into(), json!(upn));
        }
        u.insert("accountEnabled".into(), json!(!rng.chance(5)));
        u.insert("department".into(), json!(dept));
        u.insert("jobTitle".into(), json!(title));
        u.insert("companyName".into(), json!(company));
        if !rng.chance(5) {
            u.insert("employeeId".into(), json!(format!("{:06}", 100_000 + i)));
        }
        u.insert(
            "employeeType".into(),
            json!(if rng.chance(10) {
                "Contractor"
            } else {
                "Employee"
            }),
        );
        let hired = rng.timestamp();
        u.insert(
            "employeeHireDate".into(),
            json!(format!("{}T00:00:00Z", hired.format("%Y-%m-%d"))),
        );
        u.insert(
            "employeeOrgData".into(),
            json!({"costCenter": format!("CC-{}", 1000 + dept_ix * 10), "division": division}),
        );
        if rng.chance(75) {
            u.insert(
                "mobilePhone".into(),
                json!(format!("{phone} {:04}", rng.below(10_000))),
            );
        }
        let business = if rng.chance(85) {
            vec![json!(format!("{phone} {:04}", rng.below(10_000)))]
        } else {
            vec![]
        };
        u.insert("businessPhones".into(), Value::Array(business));
        u.insert(
            "officeLocation".into(),
            json!(format!("{}/{}", rng.below(40) + 1, 1000 + rng.below(3000))),
        );
        u.insert("city".into(), json!(city));
        if let Some(s) = state {
            u.insert("state".into(), json!(s));
        }
        u.insert("country".into(), json!(country));
        u.insert("usageLocation".into(), json!(usage));
        u.insert("streetAddress".into(), json!(street));
        u.insert(
            "postalCode".into(),
            json!(format!("{:05}", rng.below(100_000))),
        );
        u.insert("preferredLanguage".into(), json!(lang));
        u.insert("userType".into(), json!("Member"));
        u.insert("createdDateTime".into(), json!(iso(rng.timestamp())));
        if rng.chance(30) {
            u.insert(
                "onPremisesExtensionAttributes".into(),
                json!({"extensionAttribute1": format!("BADGE-{:05}", rng.below(100_000))}),
            );
        }
        let id = match dir.add_user(Value::Object(u)) {
            Ok(id) => id,
            Err(e) => unreachable!("generated user is valid: {e}"),
        };
        if let Some(head_id) = by_dept[dept_ix].first().cloned() {
            let _ = dir.set_manager(&id, Some(&head_id));
        }
        by_dept[dept_ix].push(id.clone());
        user_ids.push(id);
    }

    let mut group_ids = Vec::with_capacity(groups);
    for g in 0..groups {
        let (name, description, members): (String, String, Vec<String>) = if g < DEPARTMENTS.len() {
            let dept = DEPARTMENTS[g].0;
            (
                format!("sg-{}", dept.replace(' ', "")),
                format!("All members of {dept}"),
                by_dept[g].clone(),
            )
        } else {
            let share = 10 + rng.below(20) as u64;
            let members = user_ids
                .iter()
                .filter(|_| rng.chance(share))
                .cloned()
                .collect();
            (
                format!("sg-Project-{:03}", g - DEPARTMENTS.len() + 1),
                "Project team".to_string(),
                members,
            )
        };
        let nick = name.to_ascii_lowercase();
        let gid = match dir.add_group(json!({
            "id": rng.guid(),
            "displayName": name,
            "description": description,
            "mailNickname": nick,
            "securityEnabled": true,
            "mailEnabled": false,
            "groupTypes": [],
            "createdDateTime": iso(rng.timestamp()),
            "members": members,
        })) {
            Ok(id) => id,
            Err(e) => unreachable!("generated group is valid: {e}"),
        };
        group_ids.push(gid);
    }
    // One nested group, so engines meet a `#microsoft.graph.group` member.
    if groups >= 3 {
        let _ = dir.add_member(&group_ids[groups - 1], &group_ids[0]);
    }

    let assign = |dir: &mut Directory, rng: &mut Rng, principal: &str| {
        let id = assignment_id(rng.bytes::<32>());
        let created = iso7(rng.timestamp());
        let _ = dir.assign_with(principal, None, id, created);
    };
    for uid in &user_ids {
        if rng.chance(40) {
            assign(&mut dir, &mut rng, uid);
        }
    }
    for (g, gid) in group_ids.iter().enumerate() {
        if g % 3 == 1 || groups == 1 {
            assign(&mut dir, &mut rng, gid);
        }
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_ascii() {
        assert_eq!(nickname("Zoë", "O'Brien"), "zoe.obrien");
        assert_eq!(nickname("Tomás", "Müller"), "tomas.muller");
    }

    #[test]
    fn secret_looks_like_entra() {
        let s = secret(&mut Rng::new(1, "x"));
        assert_eq!(s.len(), 40);
        assert_eq!(&s[3..6], "8Q~");
    }
}
