//! A tiny PDF writer for the Demo site's documents: Helvetica text and ruled lines on Letter
//! pages. Hand-written because the demo needs only this, and a full PDF crate would add build
//! time for nothing; real viewers (and `pdftoppm`) open the output.

/// One element on a page, in PDF points from the bottom-left corner.
pub enum Mark {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        gray: f32,
    },
}

pub const PAGE_W: f32 = 612.0;
pub const PAGE_H: f32 = 792.0;

/// Serialises pages of marks into a complete PDF file.
pub fn render(title: &str, pages: &[Vec<Mark>]) -> Vec<u8> {
    let mut objects: Vec<Vec<u8>> = Vec::new();
    // 1: catalog, 2: pages, 3: regular font, 4: bold font, 5: info, then (page, content) pairs.
    let first_page = 6;
    let kids = (0..pages.len())
        .map(|i| format!("{} 0 R", first_page + 2 * i))
        .collect::<Vec<_>>()
        .join(" ");
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(format!("<< /Type /Pages /Kids [{kids}] /Count {} >>", pages.len()).into_bytes());
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    objects.push(
        format!(
            "<< /Title ({}) /Producer (Attache Demo site) >>",
            escape(title)
        )
        .into_bytes(),
    );
    for (i, marks) in pages.iter().enumerate() {
        let content_id = first_page + 2 * i + 1;
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] \
                 /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_id} 0 R >>"
            )
            .into_bytes(),
        );
        let stream = content_stream(marks);
        let mut obj = format!("<< /Length {} >>\nstream\n", stream.len()).into_bytes();
        obj.extend_from_slice(&stream);
        obj.extend_from_slice(b"\nendstream");
        objects.push(obj);
    }

    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(obj);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref_at = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn content_stream(marks: &[Mark]) -> Vec<u8> {
    let mut s = String::new();
    for m in marks {
        match m {
            Mark::Text {
                x,
                y,
                size,
                bold,
                text,
            } => {
                let font = if *bold { "F2" } else { "F1" };
                s.push_str(&format!(
                    "BT /{font} {size} Tf {x} {y} Td ({}) Tj ET\n",
                    escape(text)
                ));
            }
            Mark::Line { x1, y1, x2, y2 } => {
                s.push_str(&format!("0.5 w {x1} {y1} m {x2} {y2} l S\n"));
            }
            Mark::Rect { x, y, w, h, gray } => {
                s.push_str(&format!("{gray} g {x} {y} {w} {h} re f 0 g\n"));
            }
        }
    }
    s.into_bytes()
}

/// Escapes a string for a PDF literal. Latin-1 letters (é, ü, ñ in client names) are written as
/// octal escapes, which WinAnsiEncoding maps to the same glyphs; anything else becomes '?'.
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '(' => "\\(".to_owned(),
            ')' => "\\)".to_owned(),
            '\\' => "\\\\".to_owned(),
            c if c.is_ascii() && !c.is_ascii_control() => c.to_string(),
            c if ('\u{A0}'..='\u{FF}').contains(&c) => format!("\\{:03o}", c as u32),
            _ => "?".to_owned(),
        })
        .collect()
}

/// Lays out a simple document: a title block, then paragraphs wrapped to the page width, with
/// signature lines at the end; new pages as needed.
pub fn document(title: &str, subtitle: &str, paragraphs: &[&str], signatures: &[&str]) -> Vec<u8> {
    let mut pages: Vec<Vec<Mark>> = Vec::new();
    let mut page = header(title, subtitle);
    let mut y = PAGE_H - 150.0;
    for para in paragraphs {
        let heading = para.starts_with('#');
        let text = para.trim_start_matches('#').trim();
        for line in wrap(text, if heading { 70 } else { 92 }) {
            if y < 90.0 {
                pages.push(std::mem::replace(&mut page, header(title, "continued")));
                y = PAGE_H - 150.0;
            }
            page.push(Mark::Text {
                x: 60.0,
                y,
                size: if heading { 12.0 } else { 10.0 },
                bold: heading,
                text: line,
            });
            y -= if heading { 18.0 } else { 14.0 };
        }
        y -= 8.0;
    }
    for who in signatures {
        if y < 120.0 {
            pages.push(std::mem::replace(&mut page, header(title, "signatures")));
            y = PAGE_H - 150.0;
        }
        y -= 30.0;
        page.push(Mark::Line {
            x1: 60.0,
            y1: y,
            x2: 300.0,
            y2: y,
        });
        page.push(Mark::Line {
            x1: 360.0,
            y1: y,
            x2: 540.0,
            y2: y,
        });
        page.push(Mark::Text {
            x: 60.0,
            y: y - 12.0,
            size: 8.0,
            bold: false,
            text: (*who).to_owned(),
        });
        page.push(Mark::Text {
            x: 360.0,
            y: y - 12.0,
            size: 8.0,
            bold: false,
            text: "Date".to_owned(),
        });
        y -= 20.0;
    }
    pages.push(page);
    let total = pages.len();
    for (i, p) in pages.iter_mut().enumerate() {
        p.push(Mark::Text {
            x: PAGE_W - 110.0,
            y: 40.0,
            size: 8.0,
            bold: false,
            text: format!("Page {} of {total}", i + 1),
        });
    }
    render(title, &pages)
}

fn header(title: &str, subtitle: &str) -> Vec<Mark> {
    vec![
        Mark::Rect {
            x: 0.0,
            y: PAGE_H - 100.0,
            w: PAGE_W,
            h: 100.0,
            gray: 0.9,
        },
        Mark::Text {
            x: 60.0,
            y: PAGE_H - 60.0,
            size: 20.0,
            bold: true,
            text: title.to_owned(),
        },
        Mark::Text {
            x: 60.0,
            y: PAGE_H - 82.0,
            size: 10.0,
            bold: false,
            text: subtitle.to_owned(),
        },
        Mark::Line {
            x1: 60.0,
            y1: PAGE_H - 115.0,
            x2: PAGE_W - 60.0,
            y2: PAGE_H - 115.0,
        },
    ]
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_a_well_formed_pdf_with_a_correct_xref() {
        let long = "word ".repeat(900);
        let pdf = document(
            "Purchase Agreement",
            "12 Harbor Lane",
            &["#Terms", &long],
            &["Buyer", "Seller"],
        );
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        // Offsets are byte offsets; the binary marker line is not UTF-8, so work on bytes.
        let text = String::from_utf8_lossy(&pdf);
        let startxref: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(pdf[startxref..].starts_with(b"xref"));
        // Each xref offset points at "N 0 obj".
        let xref = String::from_utf8(pdf[startxref..].to_vec()).unwrap();
        let mut checked = 0;
        for (n, line) in xref
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .enumerate()
        {
            let off: usize = line[..10].parse().unwrap();
            assert!(pdf[off..].starts_with(format!("{} 0 obj", n + 1).as_bytes()));
            checked += 1;
        }
        assert!(checked >= 7);
        assert!(
            text.contains("/Count 2") || text.contains("/Count 3"),
            "long text spans pages"
        );
    }

    #[test]
    fn escapes_parentheses_and_non_ascii() {
        assert_eq!(escape("a(b)\\ é €"), "a\\(b\\)\\\\ \\351 ?");
    }
}
