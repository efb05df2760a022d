//! Listing, search and the trash bin: one filter/sort/page model fed by query keys (list) or a
//! JSON body (search), with opaque cursors.

use super::*;

/// One listing's filter, order and page, from query keys (list) or a JSON body (search).
pub(super) struct Listing {
    trash: bool,
    parent_folder_id: Option<String>,
    media_types: Vec<String>,
    private: Option<bool>,
    search: Option<String>,
    sort_field: String,
    descending: bool,
    limit: usize,
    cursor: Option<String>,
}

const MEDIA_TYPES: &[&str] = &[
    "IMAGE", "VIDEO", "AUDIO", "DOCUMENT", "VECTOR", "ARCHIVE", "MODEL3D", "OTHER",
];

impl Listing {
    fn from_query(params: &[(String, String)], trash: bool) -> Result<Self, ApiError> {
        let mut l = Listing {
            trash,
            parent_folder_id: None,
            media_types: Vec::new(),
            private: None,
            search: None,
            sort_field: "updatedDate".into(),
            descending: true,
            limit: PAGE_DEFAULT,
            cursor: None,
        };
        for (k, v) in params {
            match k.as_str() {
                "parentFolderId" => l.parent_folder_id = Some(v.clone()),
                "mediaTypes" => l.media_types.push(v.clone()),
                "private" => {
                    l.private = Some(
                        v.parse()
                            .map_err(|_| rule("private", "true or false", "FORMAT"))?,
                    )
                }
                "sort.fieldName" => l.sort_field = v.clone(),
                "sort.order" => l.descending = order_desc(v)?,
                "paging.limit" => l.limit = page_limit(v.parse().ok())?,
                "paging.cursor" => l.cursor = Some(v.clone()),
                // Unknown keys are ignored, as Wix's gateway does.
                _ => {}
            }
        }
        l.validate()
    }

    fn from_search(body: &Value) -> Result<Self, ApiError> {
        let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let trash = match s("rootFolder").as_deref() {
            None | Some("MEDIA_ROOT") => false,
            Some("TRASH_ROOT") => true,
            Some("VISITOR_UPLOADS_ROOT") => false,
            Some(other) => {
                return Err(rule(
                    "rootFolder",
                    format!("unknown root {other}"),
                    "FORMAT",
                ))
            }
        };
        let sort = body.get("sort");
        let paging = body.get("paging");
        let l = Listing {
            trash,
            parent_folder_id: None,
            media_types: body
                .get("mediaTypes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            private: body.get("private").and_then(Value::as_bool),
            search: s("search").filter(|q| !q.is_empty()),
            sort_field: sort
                .and_then(|v| v.get("fieldName"))
                .and_then(Value::as_str)
                .unwrap_or("updatedDate")
                .to_owned(),
            descending: match sort.and_then(|v| v.get("order")).and_then(Value::as_str) {
                Some(o) => order_desc(o)?,
                None => true,
            },
            limit: page_limit(
                paging
                    .and_then(|p| p.get("limit"))
                    .and_then(Value::as_u64)
                    .map(|n| n as usize),
            )?,
            cursor: paging
                .and_then(|p| p.get("cursor"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        l.validate()
    }

    fn validate(self) -> Result<Self, ApiError> {
        if !["displayName", "updatedDate", "sizeInBytes"].contains(&self.sort_field.as_str()) {
            return Err(rule(
                "sort.fieldName",
                format!("cannot sort by {}", self.sort_field),
                "UNSUPPORTED_SORT_VALUE",
            ));
        }
        if let Some(t) = self
            .media_types
            .iter()
            .find(|t| !MEDIA_TYPES.contains(&t.as_str()))
        {
            return Err(rule(
                "mediaTypes",
                format!("unknown media type {t}"),
                "UNSUPPORTED_MEDIA_TYPE",
            ));
        }
        Ok(self)
    }

    fn matches(&self, f: &StoredMediaFile) -> bool {
        (f.state == "DELETED") == self.trash
            && self
                .parent_folder_id
                .as_ref()
                .is_none_or(|p| &f.parent_folder_id == p)
            && (self.media_types.is_empty()
                || self
                    .media_types
                    .iter()
                    .any(|t| t == media_type(&f.mime_type)))
            && self.private.is_none_or(|p| f.private == p)
            && self
                .search
                .as_ref()
                .is_none_or(|q| f.display_name.to_lowercase().contains(&q.to_lowercase()))
    }

    fn respond(self, state: &Shared, headers: &HeaderMap) -> Result<Response, ApiError> {
        let start = match &self.cursor {
            None => 0,
            Some(c) => decode_cursor(c)?,
        };
        let data = state.site.lock();
        let mut files: Vec<&StoredMediaFile> = data
            .media_files
            .iter()
            .filter(|f| self.matches(f))
            .collect();
        files.sort_by(|a, b| {
            let ord = match self.sort_field.as_str() {
                "displayName" => a
                    .display_name
                    .to_lowercase()
                    .cmp(&b.display_name.to_lowercase()),
                "sizeInBytes" => a.size_bytes.cmp(&b.size_bytes),
                _ => a.updated_date.cmp(&b.updated_date),
            }
            // Ties broken by id, so pages never overlap or skip.
            .then_with(|| a.id.cmp(&b.id));
            if self.descending {
                ord.reverse()
            } else {
                ord
            }
        });
        let total = files.len();
        let origin = origin(headers);
        let page: Vec<Value> = files
            .iter()
            .skip(start)
            .take(self.limit)
            .map(|f| descriptor(f, &origin, &state.config.site_id))
            .collect();
        let end = start + page.len();
        let next = (end < total).then(|| encode_cursor(end));
        Ok(Json(json!({
            "files": page,
            "nextCursor": {"cursors": {"next": next}, "total": total},
        }))
        .into_response())
    }
}

fn order_desc(v: &str) -> Result<bool, ApiError> {
    match v {
        "ASC" => Ok(false),
        "DESC" => Ok(true),
        other => Err(rule(
            "sort.order",
            format!("ASC or DESC, not {other}"),
            "FORMAT",
        )),
    }
}

fn page_limit(v: Option<usize>) -> Result<usize, ApiError> {
    match v {
        None => Ok(PAGE_DEFAULT),
        Some(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
        Some(n) => Err(rule(
            "paging.limit",
            format!("between 1 and 100, not {n}"),
            "MAX",
        )),
    }
}

fn encode_cursor(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_cursor(c: &str) -> Result<usize, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| {
            rule(
                "paging.cursor",
                "not a cursor this API gave out",
                "INVALID_CURSOR",
            )
        })
}

pub(super) async fn list_files(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut listing = Listing::from_query(&params, false)?;
    if listing.parent_folder_id.is_none() {
        listing.parent_folder_id = Some(MEDIA_ROOT.into());
    }
    listing.respond(&state, &headers)
}

pub(super) async fn list_deleted_files(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    Listing::from_query(&params, true)?.respond(&state, &headers)
}

pub(super) async fn search_files(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: Value = parse_json(&body)?;
    Listing::from_search(&body)?.respond(&state, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_cursor(&encode_cursor(150)).unwrap(), 150);
        assert!(decode_cursor("garbage").is_err());
    }
}
