//! The demo seed: on a database with no users, an organization with an owner, and a platform
//! admin, plus the organizations whose months of billing history `seed_history` then plays
//! through the offline Stripe (one owner each, sharing one password). Passwords are random,
//! written to `DATA_DIR/demo-logins.txt` (readable by the owner only) and printed at every start
//! so the demo can be tried at once.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};
use sqlx::PgPool;

use crate::accounts::model::{Email, NewPassword};
use crate::accounts::{password, repo as users};
use crate::orgs::model::{OrgName, Role};
use crate::orgs::repo as orgs;

pub const DEMO_OWNER: &str = "owner@demo.example.com";
pub const DEMO_ADMIN: &str = "admin@demo.example.com";
pub const DEMO_ORG: &str = "Demo Company";

pub fn logins_file(data_dir: &Path) -> PathBuf {
    data_dir.join("demo-logins.txt")
}

/// Puts `line` into the demo logins file in place of any line starting with `label` (or at its
/// end), keeping the file readable by its owner only.
pub fn record_login_line(data_dir: &Path, label: &str, line: &str) -> anyhow::Result<()> {
    let path = logins_file(data_dir);
    let existing = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).context("reading the demo logins"),
    };
    let mut lines: Vec<&str> = existing.lines().filter(|l| !l.starts_with(label)).collect();
    lines.push(line);
    fs::create_dir_all(data_dir)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .context("writing the demo logins")?;
    for l in lines {
        writeln!(file, "{l}")?;
    }
    Ok(())
}

/// A random password of 20 letters and digits.
pub fn random_password() -> anyhow::Result<NewPassword> {
    let raw = Alphanumeric.sample_string(&mut rand::rng(), 20);
    NewPassword::parse(&raw).context("generating a password")
}

/// The organizations of the demo's history: name, owner, and their story (see `seed_history`).
pub const STORY_ORGS: [(&str, &str); 7] = [
    ("Starter Studio", "starter@demo.example.com"),
    ("Pro Labs", "pro@demo.example.com"),
    ("Max Industries", "max@demo.example.com"),
    ("Trial Works", "trial@demo.example.com"),
    ("Grace Period Inc", "grace@demo.example.com"),
    ("Churned Ltd", "churned@demo.example.com"),
    ("Credits Co", "credits@demo.example.com"),
];

/// Seeds the demo unless the database already has users. Returns whether it seeded.
pub async fn seed_demo_if_empty(pool: &PgPool, data_dir: &Path) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    // One seeder at a time when several instances start together.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('billing_portal.seed_demo'))")
        .execute(&mut *tx)
        .await?;
    if users::count(&mut *tx).await? > 0 {
        return Ok(false);
    }
    let owner_password = random_password()?;
    let admin_password = random_password()?;
    let owner = users::insert_user(
        &mut *tx,
        &Email::parse(DEMO_OWNER)?,
        &password::hash(&owner_password).await?,
        false,
    )
    .await?;
    users::insert_user(
        &mut *tx,
        &Email::parse(DEMO_ADMIN)?,
        &password::hash(&admin_password).await?,
        true,
    )
    .await?;
    let org = orgs::insert_org(&mut tx, &OrgName::parse(DEMO_ORG)?).await?;
    orgs::add_member(&mut *tx, org.id, owner.id, Role::Owner).await?;
    let api_key = crate::api::keys::create(&mut *tx, org.id, "Demo key", Some(owner.id)).await?;
    let story_password = random_password()?;
    let story_hash = password::hash(&story_password).await?;
    for (name, email) in STORY_ORGS {
        let user = users::insert_user(&mut *tx, &Email::parse(email)?, &story_hash, false).await?;
        let org = orgs::insert_org(&mut tx, &OrgName::parse(name)?).await?;
        orgs::add_member(&mut *tx, org.id, user.id, Role::Owner).await?;
    }

    fs::create_dir_all(data_dir)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(logins_file(data_dir))
        .context("writing the demo logins")?;
    writeln!(
        file,
        "Demo organization owner: {DEMO_OWNER} / {}",
        owner_password.expose()
    )?;
    writeln!(
        file,
        "Platform admin:          {DEMO_ADMIN} / {}",
        admin_password.expose()
    )?;
    writeln!(file, "Demo Company API key:    {api_key}")?;
    let emails: Vec<&str> = STORY_ORGS.iter().map(|(_, email)| *email).collect();
    writeln!(
        file,
        "Owners with a history (password {}): {}",
        story_password.expose(),
        emails.join(", ")
    )?;
    tx.commit().await?;
    Ok(true)
}
