//! A positive and a negative sample for every default rule, made at run
//! time from pieces and pseudo-random characters.

use super::*;

/// One rule's samples: texts that must trigger it and texts that must not.
struct Sample {
    rule: &'static str,
    hits: Vec<String>,
    misses: Vec<String>,
}

fn sample(rule: &'static str, hits: Vec<String>, misses: Vec<String>) -> Sample {
    Sample { rule, hits, misses }
}

/// `-----BEGIN <kind>-----`, spelt out at run time.
fn begin(kind: &str) -> String {
    format!("{0}BEGIN {kind}{0}", "-".repeat(5))
}

fn end(kind: &str) -> String {
    format!("{0}END {kind}{0}", "-".repeat(5))
}

fn pem(kind: &str, body: &str) -> String {
    format!("{}\n{body}\n{}\n", begin(kind), end(kind))
}

fn all_samples() -> Vec<Sample> {
    let mut c = Chars::new(1);
    let cat = |parts: &[&str]| parts.concat();
    let pem_body = c.take(B64, 64) + "\n" + &c.take(B64, 64);
    let jwt_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let jwt_claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"1234567890","name":"Sandbox","iat":1700000000}"#);
    vec![
        sample(
            "aws-access-key-id",
            vec![
                format!("aws_access_key_id = {}{}", cat(&["AK", "IA"]), c.take(B32, 16)),
                format!("key%3D{}{}%26", cat(&["AS", "IA"]), c.take(B32, 16)),
            ],
            vec![
                format!("id {}{} more", cat(&["AK", "IA"]), c.take(B32, 15)),
                format!("id {}{}", cat(&["AK", "IA", "IOSFODNN7"]), "EXAMPLE"),
            ],
        ),
        sample(
            "aws-secret-access-key",
            vec![
                format!("AWS_SECRET_ACCESS_KEY={}\n", c.take(B64, 40)),
                format!(r#"{{"SecretAccessKey": "{}"}}"#, c.take(B64, 40)),
            ],
            vec![format!("aws_secret_access_key = {}", "A".repeat(40)), format!("secret_key: {}", c.take(B64, 40))],
        ),
        sample(
            "gcp-api-key",
            vec![format!("https://maps.example/api?key={}{}&x=1", cat(&["AI", "za"]), c.take(URL_B64, 35))],
            vec![format!("key={}{}", cat(&["AI", "za"]), c.take(URL_B64, 30))],
        ),
        sample(
            "gcp-service-account",
            vec![format!(
                r#"{{"type":"service_account","private_key":"{}\n{}\n{}\n"}}"#,
                begin("PRIVATE KEY"),
                c.take(B64, 64),
                end("PRIVATE KEY")
            )],
            vec![r#"{"type":"service_account","private_key":""}"#.to_owned()],
        ),
        sample(
            "azure-storage-key",
            vec![
                format!(
                    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={}==;EndpointSuffix=core.windows.net",
                    c.take(B64, 86)
                ),
                format!("AZURE_STORAGE_KEY=\"{}==\"", c.take(B64, 86)),
            ],
            vec![format!("AccountKey={}==", c.take(B64, 40))],
        ),
        sample(
            "azure-ad-client-secret",
            vec![format!(
                "client_secret={}7{}{}&grant_type=client_credentials",
                c.take(ALNUM, 3),
                "Q~",
                c.take(ALNUM, 34)
            )],
            vec![format!("client_secret=abc7{}short", "Q~")],
        ),
        sample(
            "digitalocean-token",
            vec![format!("Authorization: Bearer {}{}", cat(&["do", "p_v1_"]), c.take(HEX, 64))],
            vec![format!("Bearer {}{}", cat(&["do", "p_v1_"]), c.take(HEX, 32))],
        ),
        sample(
            "vault-token",
            vec![format!("X-Vault-Token: {}{}", cat(&["hv", "s."]), c.take(URL_B64, 90))],
            vec![format!("X-Vault-Token: {}short", cat(&["hv", "s."]))],
        ),
        sample(
            "github-pat",
            vec![
                format!("token {}{}", cat(&["gh", "p_"]), c.take(ALNUM, 36)),
                format!("password%3D{}{}%26", cat(&["gh", "p_"]), c.take(ALNUM, 36)),
            ],
            vec![
                format!("token {}{}", cat(&["gh", "p_"]), "x".repeat(36)),
                format!("token {}{}", cat(&["gh", "p_"]), c.take(ALNUM, 40)),
            ],
        ),
        sample(
            "github-fine-grained-pat",
            vec![format!("{}{}_{}", cat(&["github", "_pat_"]), c.take(ALNUM, 22), c.take(ALNUM, 59))],
            vec![format!("{}{}_{}", cat(&["github", "_pat_"]), c.take(ALNUM, 22), c.take(ALNUM, 40))],
        ),
        sample(
            "github-oauth",
            vec![format!("{}{}", cat(&["gh", "o_"]), c.take(ALNUM, 36))],
            vec![format!("{}{}", cat(&["gh", "o_"]), c.take(ALNUM, 35))],
        ),
        sample(
            "github-app-token",
            vec![
                format!("{}{}", cat(&["gh", "s_"]), c.take(ALNUM, 36)),
                format!("{}{}", cat(&["gh", "u_"]), c.take(ALNUM, 36)),
            ],
            vec![format!("{}{}", cat(&["gh", "s_"]), c.take(ALNUM, 30))],
        ),
        sample(
            "github-refresh-token",
            vec![format!("{}{}", cat(&["gh", "r_"]), c.take(ALNUM, 76))],
            vec![format!("{}{}", cat(&["gh", "r_"]), c.take(ALNUM, 20))],
        ),
        sample(
            "gitlab-pat",
            vec![format!("PRIVATE-TOKEN: {}{}", cat(&["gl", "pat-"]), c.take(ALNUM, 20))],
            vec![format!("PRIVATE-TOKEN: {}{}", cat(&["gl", "pat-"]), c.take(ALNUM, 10))],
        ),
        sample(
            "gitlab-pipeline-trigger-token",
            vec![format!("token={}{}", cat(&["gl", "ptt-"]), c.take(HEX, 40))],
            vec![format!("token={}{}", cat(&["gl", "ptt-"]), c.take(HEX, 10))],
        ),
        sample(
            "gitlab-runner-token",
            vec![
                format!("token = \"{}{}\"", cat(&["gl", "rt-"]), c.take(URL_B64, 20)),
                format!("registration {}{}", cat(&["GR13", "48941"]), c.take(ALNUM, 20)),
            ],
            vec![format!("{}abc", cat(&["gl", "rt-"]))],
        ),
        sample(
            "gitlab-deploy-token",
            vec![format!("{}{}", cat(&["gl", "dt-"]), c.take(ALNUM, 20))],
            vec![format!("{}{}", cat(&["gl", "dt-"]), c.take(ALNUM, 12))],
        ),
        sample(
            "slack-bot-token",
            vec![format!("{}{}-{}-{}", cat(&["xo", "xb-"]), c.take(DIGITS, 12), c.take(DIGITS, 13), c.take(ALNUM, 24))],
            vec![format!("{}123-456-abc", cat(&["xo", "xb-"]))],
        ),
        sample(
            "slack-user-token",
            vec![format!(
                "{}{}-{}-{}-{}",
                cat(&["xo", "xp-"]),
                c.take(DIGITS, 12),
                c.take(DIGITS, 12),
                c.take(DIGITS, 13),
                c.take(HEX, 32)
            )],
            vec![format!("{}{}-{}-{}", cat(&["xo", "xp-"]), c.take(DIGITS, 12), c.take(DIGITS, 12), c.take(HEX, 32))],
        ),
        sample(
            "slack-app-token",
            vec![format!(
                "{}1-{}-{}-{}",
                cat(&["xa", "pp-"]),
                c.take(UPPER_ALNUM, 11),
                c.take(DIGITS, 13),
                c.take(HEX, 64)
            )],
            vec![format!(
                "{}1-{}-{}-{}",
                cat(&["xa", "pp-"]),
                c.take(UPPER_ALNUM, 11),
                c.take(DIGITS, 13),
                c.take(HEX, 16)
            )],
        ),
        sample(
            "slack-webhook-url",
            vec![format!(
                "POST https://{}/services/T{}/B{}/{}",
                cat(&["hooks.", "slack.com"]),
                c.take(UPPER_ALNUM, 10),
                c.take(UPPER_ALNUM, 10),
                c.take(ALNUM, 24)
            )],
            vec![format!("see https://{}/services/ for details", cat(&["hooks.", "slack.com"]))],
        ),
        sample(
            "discord-webhook-url",
            vec![format!(
                "https://{}/{}/{}",
                cat(&["discord.com", "/api/webhooks"]),
                c.take(DIGITS, 18),
                c.take(URL_B64, 68)
            )],
            vec![format!("https://{}/{}/{}", cat(&["discord.com", "/api/webhooks"]), "channel", c.take(URL_B64, 68))],
        ),
        sample(
            "telegram-bot-token",
            vec![format!("https://api.telegram.org/bot{}:{}{}/getMe", c.take(DIGITS, 10), "AA", c.take(URL_B64, 33))],
            vec![
                format!("time 12:{}{}", "AA", c.take(URL_B64, 33)),
                format!("bot{}:{}short", c.take(DIGITS, 10), "AA"),
            ],
        ),
        sample(
            "stripe-secret-key",
            vec![format!("-u {}{}:", cat(&["sk_", "live_"]), c.take(ALNUM, 24))],
            vec![format!("-u {}{}:", cat(&["sk_", "live_"]), c.take(ALNUM, 10))],
        ),
        sample(
            "stripe-restricted-key",
            vec![format!("{}{}", cat(&["rk_", "test_"]), c.take(ALNUM, 24))],
            vec![format!("{}{}", cat(&["rk_", "test_"]), c.take(ALNUM, 10))],
        ),
        sample(
            "shopify-token",
            vec![format!("X-Shopify-Access-Token: {}{}", cat(&["shp", "at_"]), c.take(HEX, 32))],
            vec![format!("X-Shopify-Access-Token: {}{}", cat(&["shp", "at_"]), c.take(HEX, 31))],
        ),
        sample(
            "twilio-api-key",
            vec![format!("api key {}{}", "SK", c.take(HEX, 32))],
            vec![format!("api key {}{}", "SK", c.take(HEX, 31)), format!("TASK{}", c.take(HEX, 32))],
        ),
        sample(
            "twilio-auth-token",
            vec![format!("TWILIO_AUTH_TOKEN={}", c.take(HEX, 32))],
            vec![format!("TWILIO_AUTH_TOKEN={}", "0".repeat(32)), "twilio_region=us1".to_owned()],
        ),
        sample(
            "sendgrid-api-key",
            vec![format!("{}{}.{}", cat(&["S", "G."]), c.take(URL_B64, 22), c.take(URL_B64, 43))],
            vec![format!("{}{}", cat(&["S", "G."]), c.take(URL_B64, 22))],
        ),
        sample(
            "mailgun-api-key",
            vec![
                format!("api:{}{}", cat(&["ke", "y-"]), c.take(HEX, 32)),
                format!("MAILGUN_API_KEY={}-{}-{}", c.take(HEX, 32), c.take(HEX, 8), c.take(HEX, 8)),
            ],
            vec![format!("the-{}{}", cat(&["ke", "y-"]), c.take(HEX, 32))],
        ),
        sample(
            "npm-access-token",
            vec![format!("//registry.npmjs.org/:_authToken={}{}", cat(&["np", "m_"]), c.take(ALNUM, 36))],
            vec![format!("{}{}", cat(&["np", "m_"]), c.take(ALNUM, 20))],
        ),
        sample(
            "pypi-upload-token",
            vec![format!("password = {}{}", cat(&["pypi-", "AgEIcHlwaS5vcmc"]), c.take(URL_B64, 60))],
            vec![format!("password = {}{}", cat(&["pypi-", "AgEIcHlwaS5vcmc"]), c.take(URL_B64, 10))],
        ),
        sample(
            "openai-api-key",
            vec![
                format!(
                    "Bearer {}{}{}{}",
                    cat(&["sk-", "proj-"]),
                    c.take(URL_B64, 40),
                    cat(&["T3Blbk", "FJ"]),
                    c.take(URL_B64, 40)
                ),
                format!("Bearer {}{}{}{}", "sk-", c.take(ALNUM, 20), cat(&["T3Blbk", "FJ"]), c.take(ALNUM, 20)),
            ],
            vec![format!("Bearer {}{}", cat(&["sk-", "proj-"]), c.take(URL_B64, 80))],
        ),
        sample(
            "anthropic-api-key",
            vec![format!("x-api-key: {}{}AA", cat(&["sk-", "ant-", "api03-"]), c.take(URL_B64, 93))],
            vec![format!("x-api-key: {}{}", cat(&["sk-", "ant-", "api03-"]), c.take(URL_B64, 20))],
        ),
        sample(
            "huggingface-token",
            vec![format!("Authorization: Bearer {}{}", cat(&["h", "f_"]), c.take(ALPHA, 34))],
            vec!["from huggingface_hub import hf_hub_download".to_owned()],
        ),
        sample(
            "private-key",
            vec![
                pem("RSA PRIVATE KEY", &pem_body),
                pem("EC PRIVATE KEY", &pem_body),
                pem("OPENSSH PRIVATE KEY", &pem_body),
                pem("PRIVATE KEY", &pem_body),
                pem("ENCRYPTED PRIVATE KEY", &pem_body),
                format!(
                    "{}\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{}\n\n{pem_body}",
                    begin("RSA PRIVATE KEY"),
                    c.take(HEX, 32)
                ),
                serde_json::json!({ "key": pem("PRIVATE KEY", &pem_body) }).to_string(),
            ],
            vec![pem("PUBLIC KEY", &pem_body), pem("CERTIFICATE", &pem_body), format!("{}\n\n", begin("PRIVATE KEY"))],
        ),
        sample(
            "pgp-private-key",
            vec![format!(
                "{}\nVersion: GnuPG v2\nComment: test\n\n{pem_body}\n{}",
                begin("PGP PRIVATE KEY BLOCK"),
                end("PGP PRIVATE KEY BLOCK")
            )],
            vec![pem("PGP PUBLIC KEY BLOCK", &pem_body)],
        ),
        sample(
            "jwt",
            vec![format!("Authorization: Bearer {jwt_header}.{jwt_claims}.{}", c.take(URL_B64, 43))],
            vec![format!("header {jwt_header} alone"), format!("{jwt_header}.{}", c.take(URL_B64, 43))],
        ),
        sample(
            "generic-api-key",
            vec![
                format!("api_key = \"{}\"", c.take(ALNUM, 32)),
                format!(r#"{{"client_secret": "{}"}}"#, c.take(URL_B64, 40)),
                format!("export DB_PASSWORD={}\n", c.take(ALNUM, 20)),
            ],
            vec![
                r#"{"token_type": "bearer", "api_version": "2024-06-01"}"#.to_owned(),
                "api_key = \"NotASecretJustWords\"".to_owned(),
                format!("api_key = \"example{}\"", c.take(ALNUM, 16)),
                format!("password = \"{}\"", "a1".repeat(12)),
            ],
        ),
    ]
}

#[test]
fn every_default_rule_has_samples() {
    let samples = all_samples();
    let rules = DlpRules::default_rules();
    for id in rules.ids() {
        assert!(samples.iter().any(|s| s.rule == id), "no samples for {id}");
    }
    for s in &samples {
        assert!(rules.action(s.rule).is_some(), "samples for unknown rule {}", s.rule);
        assert!(!s.hits.is_empty() && !s.misses.is_empty(), "{}", s.rule);
    }
}

#[test]
fn default_rules_hit_their_samples() {
    let scanner = default_scanner();
    let mut failures = Vec::new();
    for s in all_samples() {
        for text in &s.hits {
            let found = scanner.scan(text.as_bytes());
            if !found.iter().any(|f| f.rule == s.rule) {
                failures.push(format!("{} missed {text:?} (found {:?})", s.rule, ids(&found)));
            }
        }
        for text in &s.misses {
            let found = scanner.scan(text.as_bytes());
            if found.iter().any(|f| f.rule == s.rule) {
                failures.push(format!("{} matched {text:?}", s.rule));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ordinary_traffic_triggers_nothing() {
    let mut chars = Chars::new(5);
    let scanner = default_scanner();
    let text = ordinary_text(&mut chars);
    assert_eq!(ids(&scanner.scan(&text)), Vec::<&str>::new());
    let json = ordinary_json(&mut chars);
    assert_eq!(ids(&scanner.scan(&json)), Vec::<&str>::new());
    let json = keyword_dense_json(&mut chars);
    assert_eq!(ids(&scanner.scan(&json)), Vec::<&str>::new());
    let request = "GET /api/v2/items?page=3&sort=asc HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.5.0\r\n\
                   Accept: application/json\r\nX-Request-Id: 5f1c2a9e-3b7d-4e0a-9c4f-1a2b3c4d5e6f\r\n\r\n";
    assert_eq!(ids(&scanner.scan(request.as_bytes())), Vec::<&str>::new());
}
