//! The Demo site's first-run data: realistic buyers and sellers of a small brokerage, each with
//! the documents an agent would have filed on them. Everything is generated (PDFs, JPEG photos,
//! a CSV, a DOCX) so the repository carries no binaries.

use std::path::Path;

use serde_json::{json, Value};

use crate::files;
use crate::pdf;
use crate::photo::{self, Style};
use crate::site::{self, SiteData, SiteError, StoredAttachment};

struct Person {
    first: &'static str,
    last: &'static str,
    email: &'static str,
    phone: &'static str,
    street: (&'static str, &'static str),
    city: &'static str,
    subdivision: &'static str,
    postal: &'static str,
    role: &'static str,
}

const PEOPLE: &[Person] = &[
    Person {
        first: "Ana",
        last: "Silva",
        email: "ana.silva@example.com",
        phone: "+1 415 555 0132",
        street: ("1450", "Lombard Street"),
        city: "San Francisco",
        subdivision: "US-CA",
        postal: "94123",
        role: "buyer",
    },
    Person {
        first: "Marcus",
        last: "Okafor",
        email: "marcus.okafor@example.com",
        phone: "+1 510 555 0178",
        street: ("82", "Grand Avenue"),
        city: "Oakland",
        subdivision: "US-CA",
        postal: "94612",
        role: "seller",
    },
    Person {
        first: "Chloé",
        last: "Dubois",
        email: "chloe.dubois@example.fr",
        phone: "+1 650 555 0119",
        street: ("305", "Alma Street"),
        city: "Palo Alto",
        subdivision: "US-CA",
        postal: "94301",
        role: "buyer",
    },
    Person {
        first: "Hiroshi",
        last: "Tanaka",
        email: "h.tanaka@example.jp",
        phone: "+1 408 555 0164",
        street: ("19", "Santana Row"),
        city: "San Jose",
        subdivision: "US-CA",
        postal: "95128",
        role: "seller",
    },
    Person {
        first: "Priya",
        last: "Raman",
        email: "priya.raman@example.com",
        phone: "+1 925 555 0147",
        street: ("7721", "Oak Ridge Drive"),
        city: "Walnut Creek",
        subdivision: "US-CA",
        postal: "94598",
        role: "buyer",
    },
    Person {
        first: "James",
        last: "O'Connor",
        email: "james.oconnor@example.ie",
        phone: "+1 415 555 0190",
        street: ("2218", "Clement Street"),
        city: "San Francisco",
        subdivision: "US-CA",
        postal: "94121",
        role: "seller",
    },
    Person {
        first: "Sofia",
        last: "Müller",
        email: "sofia.mueller@example.de",
        phone: "+1 707 555 0123",
        street: ("48", "Vineyard Lane"),
        city: "Napa",
        subdivision: "US-CA",
        postal: "94558",
        role: "buyer",
    },
    Person {
        first: "Daniel",
        last: "Kim",
        email: "daniel.kim@example.com",
        phone: "+1 650 555 0155",
        street: ("600", "El Camino Real"),
        city: "Redwood City",
        subdivision: "US-CA",
        postal: "94063",
        role: "buyer",
    },
    Person {
        first: "Fatima",
        last: "Haddad",
        email: "fatima.haddad@example.com",
        phone: "+1 510 555 0107",
        street: ("1201", "Shattuck Avenue"),
        city: "Berkeley",
        subdivision: "US-CA",
        postal: "94709",
        role: "seller",
    },
    Person {
        first: "Lucas",
        last: "Moreau",
        email: "lucas.moreau@example.com",
        phone: "+1 831 555 0181",
        street: ("25", "Ocean View Boulevard"),
        city: "Monterey",
        subdivision: "US-CA",
        postal: "93940",
        role: "buyer",
    },
    Person {
        first: "Grace",
        last: "Whitfield",
        email: "grace.whitfield@example.com",
        phone: "+1 415 555 0139",
        street: ("3", "Sausalito Boulevard"),
        city: "Sausalito",
        subdivision: "US-CA",
        postal: "94965",
        role: "seller",
    },
    Person {
        first: "Mateo",
        last: "García",
        email: "mateo.garcia@example.mx",
        phone: "+1 209 555 0172",
        street: ("914", "Pacific Avenue"),
        city: "Stockton",
        subdivision: "US-CA",
        postal: "95204",
        role: "buyer",
    },
    Person {
        first: "Olivia",
        last: "Bennett",
        email: "olivia.bennett@example.com",
        phone: "+1 916 555 0126",
        street: ("5500", "Fair Oaks Boulevard"),
        city: "Sacramento",
        subdivision: "US-CA",
        postal: "95864",
        role: "seller",
    },
    Person {
        first: "Noah",
        last: "Andersson",
        email: "noah.andersson@example.se",
        phone: "+1 408 555 0198",
        street: ("77", "Los Gatos Boulevard"),
        city: "Los Gatos",
        subdivision: "US-CA",
        postal: "95030",
        role: "buyer",
    },
];

enum Content {
    Agreement {
        address: &'static str,
        price: &'static str,
    },
    Inspection {
        address: &'static str,
    },
    Disclosure {
        address: &'static str,
    },
    Photo(Style),
    Csv(&'static str),
    Docx(&'static [&'static str]),
}

pub fn seed(dir: &Path) -> Result<SiteData, SiteError> {
    let mut data = SiteData::default();
    let mut ids = Vec::new();
    for (i, p) in PEOPLE.iter().enumerate() {
        let id = uuid::Uuid::new_v4().to_string();
        // Spread creation dates over the past months so sorting by createdDate means something.
        let created = format!(
            "2026-{:02}-{:02}T{:02}:15:00.000Z",
            3 + i % 8,
            1 + (i * 2) % 27,
            9 + i % 8
        );
        data.contacts.push(contact_json(&id, &created, p, i));
        ids.push(id);
    }
    // A contact merged into Ana Silva: GetContact on the old id answers MERGED with Ana.
    data.merged
        .insert(uuid::Uuid::new_v4().to_string(), ids[0].clone());

    let house = |seed, wall, roof, dusk| {
        Content::Photo(Style {
            seed,
            wall,
            roof,
            dusk,
        })
    };
    let items: Vec<(usize, &str, &str, Content)> = vec![
        (0, "Purchase Agreement - 1450 Lombard St.pdf", "application/pdf", Content::Agreement { address: "1450 Lombard Street, San Francisco, CA 94123", price: "$1,285,000" }),
        (0, "Front elevation.jpg", "image/jpeg", house(11, [226, 214, 190], [128, 52, 40], false)),
        (0, "Street view at dusk.jpg", "image/jpeg", house(12, [200, 200, 205], [70, 70, 80], true)),
        (0, "Home Inspection Report.pdf", "application/pdf", Content::Inspection { address: "1450 Lombard Street, San Francisco, CA 94123" }),
        (0, "Offer comparison.csv", "text/csv", Content::Csv("offer,amount,contingencies,close_days\nOffer A,1285000,inspection;financing,30\nOffer B,1270000,none,21\nOffer C,1299000,inspection;appraisal;financing,45\n")),
        (1, "Seller Disclosure - 82 Grand Ave.pdf", "application/pdf", Content::Disclosure { address: "82 Grand Avenue, Oakland, CA 94612" }),
        (1, "Living room.jpg", "image/jpeg", house(21, [236, 226, 206], [90, 60, 50], false)),
        (1, "Listing notes.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Content::Docx(&[
            "Listing notes - 82 Grand Avenue, Oakland",
            "Seller prefers a 30-day close and a rent-back of two weeks.",
            "Staging booked for Friday; photographer on Monday morning.",
            "Open house: Saturday and Sunday, 1-4 pm.",
        ])),
        (2, "Pre-approval letter.pdf", "application/pdf", Content::Agreement { address: "305 Alma Street, Palo Alto, CA 94301", price: "$2,150,000" }),
        (2, "Backyard.jpg", "image/jpeg", house(31, [210, 225, 210], [60, 80, 60], false)),
        (3, "Seller Disclosure - 19 Santana Row.pdf", "application/pdf", Content::Disclosure { address: "19 Santana Row, San Jose, CA 95128" }),
        (3, "Exterior.jpg", "image/jpeg", house(41, [240, 236, 228], [150, 80, 50], false)),
        (4, "Purchase Agreement - 7721 Oak Ridge Dr.pdf", "application/pdf", Content::Agreement { address: "7721 Oak Ridge Drive, Walnut Creek, CA 94598", price: "$985,000" }),
        (4, "Inspection Report - 7721 Oak Ridge Dr.pdf", "application/pdf", Content::Inspection { address: "7721 Oak Ridge Drive, Walnut Creek, CA 94598" }),
        (5, "Front garden.jpg", "image/jpeg", house(51, [190, 205, 225], [60, 70, 100], false)),
        (6, "Vineyard house.jpg", "image/jpeg", house(61, [232, 215, 180], [140, 70, 40], true)),
        (6, "Comparable sales.csv", "text/csv", Content::Csv("address,sold,price,sqft\n12 Vine Ct,2026-05-02,1150000,2100\n90 Cellar Rd,2026-06-18,1320000,2480\n5 Barrel Way,2026-07-09,990000,1760\n")),
        (7, "Purchase Agreement - 600 El Camino Real.pdf", "application/pdf", Content::Agreement { address: "600 El Camino Real, Redwood City, CA 94063", price: "$1,640,000" }),
        (8, "Seller Disclosure - 1201 Shattuck Ave.pdf", "application/pdf", Content::Disclosure { address: "1201 Shattuck Avenue, Berkeley, CA 94709" }),
        (8, "Kitchen.jpg", "image/jpeg", house(81, [245, 240, 230], [100, 100, 100], false)),
        (9, "Ocean view.jpg", "image/jpeg", house(91, [215, 230, 240], [50, 90, 120], false)),
        (10, "Inspection Report - 3 Sausalito Blvd.pdf", "application/pdf", Content::Inspection { address: "3 Sausalito Boulevard, Sausalito, CA 94965" }),
        (11, "Offer letter.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Content::Docx(&[
            "Dear seller,",
            "Our family has loved 914 Pacific Avenue since the first open house.",
            "We offer the full asking price with a 21-day close.",
            "Mateo García",
        ])),
        (12, "Pool house.jpg", "image/jpeg", house(121, [250, 246, 238], [170, 90, 60], false)),
    ];

    for (n, (who, name, mime, content)) in items.into_iter().enumerate() {
        let id = uuid::Uuid::new_v4().to_string();
        let bytes = render(&content, &PEOPLE[who]);
        let path = site::file_path(dir, &id);
        site::write_atomically(&path, &bytes)?;
        let mut record = StoredAttachment {
            id: id.clone(),
            contact_id: ids[who].clone(),
            file_name: name.to_string(),
            mime_type: mime.to_string(),
            size_bytes: bytes.len() as u64,
            created_date: format!("2026-11-{:02}T10:{:02}:00.000Z", 1 + n % 20, n % 60),
            token: site::new_token(),
            width: None,
            height: None,
            preview: None,
            note_id: None,
        };
        if record.is_image() {
            let facts = files::make_preview(&path, &site::preview_path(dir, &id))
                .ok_or_else(|| SiteError::Seed(format!("preview of {name}")))?;
            record.width = Some(facts.width);
            record.height = Some(facts.height);
            record.preview = Some(facts.preview);
        }
        data.attachments.push(record);
    }
    Ok(data)
}

fn contact_json(id: &str, created: &str, p: &Person, i: usize) -> Value {
    let e164: String = p
        .phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    json!({
        "id": id,
        "revision": 1,
        "source": {"sourceType": "ADMIN"},
        "createdDate": created,
        "updatedDate": created,
        "lastActivity": {"activityDate": created, "activityType": "CONTACT_CREATED"},
        "primaryInfo": {"email": p.email, "phone": p.phone},
        "primaryEmail": {"email": p.email, "subscriptionStatus": "NOT_SET", "deliverabilityStatus": "NOT_SET"},
        "primaryPhone": {"countryCode": "US", "e164Phone": e164, "formattedPhone": p.phone, "phone": p.phone, "subscriptionStatus": "NOT_SET"},
        "info": {
            "name": {"first": p.first, "last": p.last},
            "emails": {"items": [{"id": uuid::Uuid::new_v4().to_string(), "tag": "MAIN", "email": p.email, "primary": true}]},
            "phones": {"items": [{"id": uuid::Uuid::new_v4().to_string(), "tag": "MOBILE", "countryCode": "US", "phone": p.phone, "e164Phone": e164, "primary": true}]},
            "addresses": {"items": [{"id": uuid::Uuid::new_v4().to_string(), "tag": "HOME", "address": {
                "streetAddress": {"number": p.street.0, "name": p.street.1},
                "city": p.city, "subdivision": p.subdivision, "country": "US", "postalCode": p.postal
            }}]},
            "company": if i.is_multiple_of(3) { Value::from("Bayview Realty client") } else { Value::Null },
            "jobTitle": Value::Null,
            "locale": "en-US",
            "labelKeys": {"items": [format!("custom.{}", p.role)]},
            "extendedFields": {"items": {"contacts.displayByFirstName": format!("{} {}", p.first, p.last)}}
        }
    })
}

fn render(content: &Content, who: &Person) -> Vec<u8> {
    let client = format!("{} {}", who.first, who.last);
    match content {
        Content::Agreement { address, price } => pdf::document(
            "Residential Purchase Agreement",
            address,
            &[
                "# 1. Offer",
                &format!("{client} (\"Buyer\") offers to purchase the real property described as {address} (\"Property\") for the purchase price of {price}."),
                "# 2. Financing",
                "This agreement is contingent upon Buyer obtaining a loan of not more than 80% of the purchase price at prevailing rates within 21 days after acceptance.",
                "# 3. Contingencies",
                "Buyer shall have 17 days after acceptance to complete all investigations, including a general physical inspection, and to approve or disapprove the Seller's disclosures.",
                "# 4. Closing and possession",
                "Close of escrow shall occur 30 days after acceptance. Possession shall be delivered at 6 pm on the day of close of escrow.",
                "# 5. Deposit",
                "Buyer shall deliver an initial deposit of 3% of the purchase price to the escrow holder within 3 business days after acceptance.",
            ],
            &[&client, "Seller"],
        ),
        Content::Inspection { address } => pdf::document(
            "Home Inspection Report",
            address,
            &[
                "# Summary",
                &format!("Inspection performed at the request of {client}. The property is a two-storey single-family residence built in 1962, in generally good condition for its age."),
                "# Roof",
                "Composition shingle roof, approximately 12 years old. Minor granule loss on the south slope; no active leaks observed. Recommend a re-inspection in 3 to 5 years.",
                "# Electrical",
                "200 A service panel. Two ungrounded outlets in the guest bedroom; recommend correction by a licensed electrician.",
                "# Plumbing",
                "Copper supply lines. The water heater is 14 years old and lacks seismic strapping on one side.",
                "# Foundation",
                "Raised perimeter foundation with no significant cracking. Minor efflorescence at the north crawlspace wall.",
            ],
            &["Inspector, CREIA #20419"],
        ),
        Content::Disclosure { address } => pdf::document(
            "Real Estate Transfer Disclosure Statement",
            address,
            &[
                "# Coordination with other disclosure forms",
                &format!("This statement concerns the real property at {address}, disclosed by {client} (\"Seller\")."),
                "# Seller's information",
                "The subject property has the items checked below: range, dishwasher, washer/dryer hookups, smoke detectors, fire alarm, central heating, central air conditioning, and a two-car attached garage.",
                "# Known defects",
                "Seller is aware of a hairline crack in the driveway and of a window seal failure in the primary bedroom. No other significant defects are known to Seller.",
            ],
            &[&client, "Buyer"],
        ),
        Content::Photo(style) => photo::property_photo(1600, 1067, style),
        Content::Csv(text) => text.as_bytes().to_vec(),
        Content::Docx(paragraphs) => files::docx(paragraphs),
    }
}
