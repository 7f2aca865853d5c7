//! Which numbers exist: libphonenumber's numbering plans (the metadata the `phonenumber`
//! crate ships), with every pattern compiled once.
//!
//! `phonenumber::is_valid` decides the same thing, but its patterns live in a shared
//! cache of 100 compiled regexes behind one mutex: a `+1` number alone tries about 250
//! patterns across the 25 NANP regions, so the cache thrashes and every parse recompiles
//! regexes under a lock (about 13 µs of a 15 µs parse, measured in BENCHMARKS.md). Here
//! each pattern is compiled once, when first needed, and then only read, by any number
//! of threads at once. The decisions are libphonenumber's, step by step: the region is
//! the first of the code's regions whose leading digits (or, without those, whose
//! number types) match, and a number is valid when its region's general pattern and
//! one of its type patterns match.

use std::str::FromStr;
use std::sync::OnceLock;

use phonenumber::country;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{Regex, RegexBuilder};

/// A pattern that must match at the start of the national number, and the lengths
/// the number may have (any, when empty).
struct Pattern {
    lengths: Vec<u16>,
    regex: Lazy,
}

impl Pattern {
    fn new(descriptor: &'static Descriptor) -> Self {
        Self {
            lengths: descriptor.possible_length().to_vec(),
            regex: Lazy::new(descriptor.national_number().as_str()),
        }
    }

    fn matches(&self, national: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(national.len() as u16)))
            && self.regex.is_match(national)
    }
}

/// A pattern compiled when first needed: a `+1` number of the US needs the US patterns,
/// not the other 24 NANP regions' (compiling all of them made the first request after
/// start-up take about 160 ms).
struct Lazy {
    source: &'static str,
    regex: OnceLock<Regex>,
}

impl Lazy {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            regex: OnceLock::new(),
        }
    }

    fn is_match(&self, national: &str) -> bool {
        self.regex
            .get_or_init(|| anchored(self.source))
            .is_match(national)
    }
}

/// `phonenumber` tests a pattern with `find` and a match starting at 0: the same as
/// matching the pattern anchored at the start. The metadata's patterns are written
/// across lines: whitespace in them means nothing.
fn anchored(source: &str) -> Regex {
    RegexBuilder::new(&format!("^(?:{source})"))
        .ignore_whitespace(true)
        .build()
        .unwrap_or_else(|e| panic!("libphonenumber pattern {source:?} does not compile: {e}"))
}

/// One region's patterns.
struct Region {
    /// `None` for the non-geographic codes (`001`: +800, +979, ...).
    id: Option<country::Id>,
    leading_digits: Option<Lazy>,
    general: Pattern,
    /// Premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail,
    /// fixed line and mobile: a number of any of these types exists.
    types: Vec<Pattern>,
}

impl Region {
    fn new(meta: &'static Metadata) -> Self {
        let d = meta.descriptors();
        let types = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ];
        Self {
            id: country::Id::from_str(meta.id()).ok(),
            leading_digits: meta.leading_digits().map(|p| Lazy::new(p.as_str())),
            general: Pattern::new(d.general()),
            types: types.into_iter().flatten().map(Pattern::new).collect(),
        }
    }

    /// `phonenumber::validator::number_type(..) != Type::Unknown`.
    fn has_type(&self, national: &str) -> bool {
        self.general.matches(national) && self.types.iter().any(|t| t.matches(national))
    }
}

/// The regions sharing one country code, in the metadata's order.
struct Plan {
    regions: Vec<Region>,
}

impl Plan {
    fn new(code: u16) -> Option<Self> {
        let ids = DATABASE.region(&code)?;
        let regions = if ids.len() == 1 && ids[0] == "001" {
            // Non-geographic: the code's first metadata entry.
            vec![Region::new(DATABASE.by_code(&code)?.into_iter().next()?)]
        } else {
            ids.iter()
                .map(|id| DATABASE.by_id(*id).map(Region::new))
                .collect::<Option<_>>()?
        };
        Some(Self { regions })
    }

    /// `phonenumber::validator::source_for`: the region a national number belongs to.
    fn region_for(&self, national: &str) -> Option<&Region> {
        if let [only] = &self.regions[..] {
            return Some(only);
        }
        self.regions
            .iter()
            .find(|region| match &region.leading_digits {
                Some(leading) => leading.is_match(national),
                None => region.has_type(national),
            })
    }
}

const CODES: usize = 1000;

static PLANS: [OnceLock<Option<Plan>>; CODES] = [const { OnceLock::new() }; CODES];

fn plan(code: u16) -> Option<&'static Plan> {
    PLANS
        .get(usize::from(code))?
        .get_or_init(|| Plan::new(code))
        .as_ref()
}

/// `phonenumber::is_valid` for a number of country `code` whose national significant
/// number is `national` (with its leading zeros).
pub fn is_valid(code: u16, national: &str) -> bool {
    plan(code)
        .and_then(|plan| plan.region_for(national))
        .is_some_and(|region| region.has_type(national))
}

/// `phonenumber::PhoneNumber::country().id()`: the region, decided on the national
/// number without its leading zeros, as that function does.
pub fn region(code: u16, national_value: &str) -> Option<country::Id> {
    plan(code)?.region_for(national_value)?.id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every example number in the metadata, and each with its last digit changed, is
    /// judged exactly as `phonenumber` judges it.
    #[test]
    fn decides_as_phonenumber_does_for_every_example_and_its_neighbours() {
        let mut compared = 0;
        for meta in DATABASE.iter() {
            let d = meta.descriptors();
            let examples = [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.voip(),
                d.uan(),
            ];
            for example in examples.into_iter().flatten().filter_map(|d| d.example()) {
                let last = example.chars().last().unwrap();
                let other = if last == '9' {
                    '0'
                } else {
                    (last as u8 + 1) as char
                };
                let neighbour = format!("{}{other}", &example[..example.len() - 1]);
                let longer = format!("{example}0");
                for national in [example, neighbour.as_str(), longer.as_str()] {
                    let raw = format!("+{} {national}", meta.country_code());
                    let Ok(number) = phonenumber::parse(None, &raw) else {
                        continue;
                    };
                    let code = number.code().value();
                    assert_eq!(
                        is_valid(code, &number.national().to_string()),
                        phonenumber::is_valid(&number),
                        "{raw}"
                    );
                    assert_eq!(
                        region(code, &number.national().value().to_string()),
                        number.country().id(),
                        "{raw}"
                    );
                    compared += 1;
                }
            }
        }
        assert!(compared > 1000, "only {compared} numbers compared");
    }
}
