//! The INF: stamping the template (`crates/driver/ferry.inx`) the way `stampinf` does, and a
//! small INF reader for `--verify` — sections, `key = value` lines, `%string%` tokens —
//! enough to check what the package promises Windows.

use std::collections::BTreeMap;

/// The template, relative to the repository root.
pub const TEMPLATE: &str = "crates/driver/ferry.inx";
/// The architecture decoration `$ARCH$` becomes (stampinf's `-a amd64`).
pub const ARCH: &str = "amd64";

/// A civil date (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date {
    /// Year.
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day, 1-31.
    pub day: u32,
}

impl Date {
    /// The UTC date of `seconds` since the Unix epoch (days-to-civil conversion, proleptic
    /// Gregorian calendar; the algorithm is the well-known era/day-of-era decomposition).
    pub fn from_unix_seconds(seconds: i64) -> Self {
        let days = seconds.div_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month: u32::try_from(month).unwrap_or(1),
            day: u32::try_from(day).unwrap_or(1),
        }
    }
}

/// The four-part driver version of a `major.minor.patch` crate version (`0.1.0` →
/// `0.1.0.0`).
///
/// # Errors
/// When the version is not three numbers of at most 65535 (what a `DriverVer` part holds).
pub fn driver_version(crate_version: &str) -> Result<String, String> {
    // Pre-release or build suffixes have no place in a DriverVer.
    let core = crate_version
        .split(['-', '+'])
        .next()
        .unwrap_or(crate_version);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.parse::<u16>().is_err()) {
        return Err(format!(
            "version {crate_version} does not fit a DriverVer (three numbers up to 65535)"
        ));
    }
    Ok(format!("{core}.0"))
}

/// The template with `$DRIVERVER$` and `$ARCH$` replaced.
///
/// # Errors
/// When the template lacks `DriverVer = $DRIVERVER$` or still holds a `$...$` token after
/// stamping.
pub fn stamp(template: &str, version: &str, date: Date) -> Result<String, String> {
    if !template.contains("$DRIVERVER$") {
        return Err(format!("{TEMPLATE} has no $DRIVERVER$ to stamp"));
    }
    let driver_ver = format!(
        "{:02}/{:02}/{:04},{version}",
        date.month, date.day, date.year
    );
    let stamped = template
        .replace("$DRIVERVER$", &driver_ver)
        .replace("$ARCH$", ARCH);
    for line in stamped.lines() {
        let code = line.split(';').next().unwrap_or("");
        // "$WINDOWS NT$" is the INF signature, not a token.
        if code.replace("$WINDOWS NT$", "").matches('$').count() >= 2 {
            return Err(format!("an unstamped token is left: {}", line.trim()));
        }
    }
    Ok(stamped)
}

/// An INF file read into sections of `key = value` entries (keys case-insensitive, kept in
/// order; a line without `=` is an entry with an empty key, as in `[Ferry.DriverFiles]`).
#[derive(Debug, Default)]
pub struct Inf {
    sections: BTreeMap<String, Vec<(String, String)>>,
}

impl Inf {
    /// Parses `text`.
    ///
    /// # Errors
    /// A line outside any section, an unterminated section header, or a duplicate section.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut inf = Self::default();
        let mut current: Option<String> = None;
        for (number, raw) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            if let Some(header) = line.strip_prefix('[') {
                let name = header
                    .strip_suffix(']')
                    .ok_or_else(|| format!("line {number}: unterminated section header"))?
                    .trim()
                    .to_ascii_lowercase();
                if inf.sections.contains_key(&name) {
                    return Err(format!("line {number}: section [{name}] appears twice"));
                }
                inf.sections.insert(name.clone(), Vec::new());
                current = Some(name);
                continue;
            }
            let section = current
                .as_ref()
                .and_then(|name| inf.sections.get_mut(name))
                .ok_or_else(|| format!("line {number}: an entry outside any section"))?;
            let (key, value) = line.split_once('=').unwrap_or(("", line));
            section.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        Ok(inf)
    }

    /// The entries of section `name` (case-insensitive).
    pub fn section(&self, name: &str) -> Option<&[(String, String)]> {
        self.sections
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
    }

    /// The first value of `key` in section `section`, with `%strings%` resolved and quotes
    /// removed.
    pub fn value(&self, section: &str, key: &str) -> Option<String> {
        let key = key.to_ascii_lowercase();
        self.section(section)?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| self.resolve(v))
    }

    /// `value` with each `%name%` replaced from `[Strings]` (numeric directory ids such as
    /// `%12%` stay) and surrounding quotes removed.
    pub fn resolve(&self, value: &str) -> String {
        let mut out = String::new();
        let mut rest = value;
        while let Some(start) = rest.find('%') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('%') else {
                out.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            match self.value("Strings", name) {
                Some(text) if !name.is_empty() => out.push_str(&text),
                _ => {
                    out.push('%');
                    out.push_str(name);
                    out.push('%');
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out.trim().trim_matches('"').to_string()
    }

    /// `%name%` tokens in any value that `[Strings]` does not define (numeric ids excepted).
    pub fn undefined_strings(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for entries in self.sections.values() {
            for (_, value) in entries {
                let resolved = self.resolve(value);
                for token in resolved.split('%').skip(1).step_by(2) {
                    if !token.is_empty()
                        && !token.chars().all(|c| c.is_ascii_digit())
                        && !missing.iter().any(|m| m == token)
                    {
                        missing.push(token.to_string());
                    }
                }
            }
        }
        missing
    }
}

/// `line` without its `;` comment (a `;` inside double quotes is text).
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (at, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return &line[..at],
            _ => {}
        }
    }
    line
}

/// What `--verify` requires of ferry's INF; each failure is one message.
///
/// `exists` says whether a file of the package is present (by name).
pub fn check(inf: &Inf, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |section: &str, key: &str, wanted: &str| match inf.value(section, key) {
        Some(found) if found.eq_ignore_ascii_case(wanted) => {}
        Some(found) => problems.push(format!("[{section}] {key} is {found}, expected {wanted}")),
        None => problems.push(format!("[{section}] has no {key}")),
    };
    expect("Version", "Signature", "$WINDOWS NT$");
    expect("Version", "Class", "WFPCALLOUTS");
    expect(
        "Version",
        "ClassGuid",
        "{57465043-616C-6C6F-7574-5F636C617373}",
    );
    let install = format!("DefaultInstall.NT{ARCH}");
    let services = format!("{install}.Services");
    let service_section = inf
        .value(&services, "AddService")
        .and_then(|v| v.split(',').nth(2).map(|s| s.trim().to_string()));
    let Some(service_section) = service_section else {
        problems.push(format!(
            "[{services}] has no AddService naming a service section"
        ));
        return problems;
    };
    expect(&service_section, "ServiceType", "1");
    expect(&service_section, "StartType", "3");
    expect(&service_section, "ErrorControl", "1");
    expect(&service_section, "Dependencies", "BFE");

    match inf.value("Version", "DriverVer") {
        Some(driver_ver) if driver_ver_is_valid(&driver_ver) => {}
        Some(driver_ver) => {
            problems.push(format!("DriverVer {driver_ver} is not mm/dd/yyyy,a.b.c.d"))
        }
        None => problems.push("[Version] has no DriverVer".to_string()),
    }

    // Every file the INF copies is a source file, and present in the package.
    let source_files: Vec<String> = inf
        .section("SourceDisksFiles")
        .unwrap_or_default()
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    if source_files.is_empty() {
        problems.push("[SourceDisksFiles] lists no file".to_string());
    }
    for file in &source_files {
        if !exists(file) {
            problems.push(format!(
                "{file} (in [SourceDisksFiles]) is not in the package"
            ));
        }
    }
    let copy_sections = inf.value(&install, "CopyFiles").unwrap_or_default();
    for section in copy_sections.split(',').map(str::trim) {
        for (_, line) in inf.section(section).unwrap_or_default() {
            let file = line
                .split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !source_files.contains(&file) {
                problems.push(format!(
                    "[{section}] copies {file}, which no source disk holds"
                ));
            }
        }
    }
    match inf.value(&service_section, "ServiceBinary") {
        Some(binary) => {
            let file = binary
                .rsplit('\\')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if !binary.starts_with("%12%\\") || !source_files.contains(&file) {
                problems.push(format!(
                    "ServiceBinary {binary} is not a copied file in %12% (System32\\drivers)"
                ));
            }
        }
        None => problems.push(format!("[{service_section}] has no ServiceBinary")),
    }
    for token in inf.undefined_strings() {
        problems.push(format!("%{token}% is not defined in [Strings]"));
    }
    problems
}

/// `mm/dd/yyyy,a.b.c.d` with each part in range.
fn driver_ver_is_valid(value: &str) -> bool {
    let Some((date, version)) = value.split_once(',') else {
        return false;
    };
    let date: Vec<&str> = date.trim().split('/').collect();
    let date_ok = matches!(date.as_slice(), [m, d, y]
        if m.len() == 2 && d.len() == 2 && y.len() == 4
            && m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
            && d.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
            && y.parse::<u32>().is_ok());
    let parts: Vec<&str> = version.trim().split('.').collect();
    date_ok && parts.len() == 4 && parts.iter().all(|p| p.parse::<u16>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::{Date, Inf, check, driver_version, stamp};

    fn template() -> String {
        std::fs::read_to_string(crate::workspace::root().join(super::TEMPLATE)).unwrap()
    }

    const DAY: i64 = 86_400;

    #[test]
    fn dates_convert_across_leap_years_and_centuries() {
        let date = |y, m, d| Date {
            year: y,
            month: m,
            day: d,
        };
        assert_eq!(Date::from_unix_seconds(0), date(1970, 1, 1));
        assert_eq!(Date::from_unix_seconds(DAY - 1), date(1970, 1, 1));
        // 2000-02-29 is day 11016 after the epoch: 30 years of 365 days plus 7 leap days
        // (1972..1996), plus 31 + 28 days.
        assert_eq!(Date::from_unix_seconds(11_016 * DAY), date(2000, 2, 29));
        assert_eq!(Date::from_unix_seconds(11_017 * DAY), date(2000, 3, 1));
        assert_eq!(Date::from_unix_seconds(-DAY), date(1969, 12, 31));
        // Walking day by day, the date always advances by exactly one day.
        let mut previous = Date::from_unix_seconds(0);
        for day in 1..(200 * 366) {
            let next = Date::from_unix_seconds(day * DAY);
            let advanced =
                (next.year, next.month, next.day) > (previous.year, previous.month, previous.day);
            assert!(
                advanced && next.day <= 31 && (1..=12).contains(&next.month),
                "{next:?}"
            );
            assert!(
                next.day == previous.day + 1 || next.day == 1,
                "{previous:?} -> {next:?}"
            );
            previous = next;
        }
    }

    #[test]
    fn crate_versions_become_driver_versions() {
        assert_eq!(driver_version("0.1.0").unwrap(), "0.1.0.0");
        assert_eq!(driver_version("2.10.3-rc.1").unwrap(), "2.10.3.0");
        assert!(driver_version("1.70000.0").is_err());
        assert!(driver_version("1.2").is_err());
    }

    #[test]
    fn the_stamped_template_passes_the_checks() {
        let date = Date::from_unix_seconds(0);
        let inf = stamp(&template(), "0.1.0.0", date).unwrap();
        assert!(inf.contains("DriverVer   = 01/01/1970,0.1.0.0"), "{inf}");
        let parsed = Inf::parse(&inf).unwrap();
        assert_eq!(
            check(&parsed, |file| file == "ferry.sys"),
            Vec::<String>::new()
        );
        assert_eq!(
            parsed
                .value("DefaultInstall.NTamd64.Services", "AddService")
                .as_deref(),
            Some("ferry,,Ferry.Service")
        );
    }

    #[test]
    fn a_missing_file_and_a_wrong_service_type_are_reported() {
        let inf = stamp(&template(), "0.1.0.0", Date::from_unix_seconds(0)).unwrap();
        let problems = check(&Inf::parse(&inf).unwrap(), |_| false);
        assert!(
            problems.iter().any(|p| p.contains("ferry.sys")),
            "{problems:?}"
        );

        let boot_start = inf.replace("ServiceType   = 1", "ServiceType   = 2");
        let problems = check(&Inf::parse(&boot_start).unwrap(), |_| true);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("ServiceType is 2"));
    }

    #[test]
    fn unstamped_or_unresolvable_tokens_are_refused() {
        assert!(
            stamp(
                "[Version]\nDriverVer = 1\n",
                "0.1.0.0",
                Date::from_unix_seconds(0)
            )
            .is_err()
        );
        let with_token = format!("{}\nX = $KMDFVERSION$\n", template());
        assert!(stamp(&with_token, "0.1.0.0", Date::from_unix_seconds(0)).is_err());
        let inf = Inf::parse("[Version]\nProvider = %Nobody%\n[Strings]\n").unwrap();
        assert_eq!(inf.undefined_strings(), vec!["Nobody".to_string()]);
    }

    #[test]
    fn comments_and_case_do_not_matter_but_structure_does() {
        let inf = Inf::parse("[A]\nKey = \"v;1\" ; note\n[b]\nfile.sys,,,0x40\n").unwrap();
        assert_eq!(inf.value("a", "KEY").as_deref(), Some("v;1"));
        assert_eq!(inf.section("B").unwrap()[0].1, "file.sys,,,0x40");
        assert!(Inf::parse("Key = 1\n").is_err());
        assert!(Inf::parse("[A\n").is_err());
        assert!(Inf::parse("[A]\n[a]\n").is_err());
    }
}
