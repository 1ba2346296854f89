//! Taking in a copied store (`paddock store copy`): records as another
//! backend exported them, ids and `first_seen` kept.

use super::{PgStore, StoreError, nanos, schema};
use crate::store::pending::Pending;
use crate::store::{Copied, Exported};

impl PgStore {
    /// Whether the database holds no stories yet.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let client = self.conn()?;
        self.block(schema::is_empty(&**client))
    }

    /// Writes one batch of records in one transaction, and counts them
    /// into `copied`. Later stamps stay after every copied `first_seen`.
    pub fn import(&self, records: Vec<Exported>, copied: &mut Copied) -> Result<(), StoreError> {
        self.write(|w| {
            let mut stories = Pending::default();
            let mut newest = i64::MIN;
            for record in records {
                match record {
                    Exported::Story(item) => {
                        newest = newest.max(nanos(item.first_seen));
                        stories.put_unchanged(*item);
                        copied.stories += 1;
                    }
                    Exported::Tombstone { id, link_hash, removed } => {
                        w.put_tombstones(
                            &[id.0.to_vec()],
                            &[link_hash.map(|h| h as i64)],
                            &[nanos(removed)],
                        )?;
                        copied.tombstones += 1;
                    }
                    Exported::State(feed, state) => {
                        w.exec(super::write::PUT_STATE, &[&feed, &serde_json::to_vec(&state)?])?;
                        copied.feed_states += 1;
                    }
                    Exported::Validators(url, validators) => {
                        let key = super::write::url_key(&url);
                        w.exec(
                            "INSERT INTO comment_validators (url_key, url, value) VALUES ($1, $2, $3)
                             ON CONFLICT (url_key) DO UPDATE SET value = EXCLUDED.value",
                            &[&&key[..], &url, &serde_json::to_vec(&validators)?],
                        )?;
                    }
                    Exported::Comment { hash, item, time, stored } => {
                        w.put_record(&hash, item, time, stored);
                        copied.comments += 1;
                    }
                    Exported::Stream { hash, time, entry } => {
                        w.put_stream(&hash, time, &entry)?;
                    }
                    Exported::Waiting { link, hash, comment } => {
                        w.put_waiting(&link, &hash, &comment)?;
                        copied.waiting += 1;
                    }
                }
            }
            w.put_stories(stories, chrono::Utc::now())?;
            if newest > i64::MIN {
                w.exec(
                    "UPDATE paddock_meta SET value = GREATEST(value, $1) WHERE key = 'last_stamp'",
                    &[&newest],
                )?;
            }
            w.changed();
            Ok(())
        })
    }
}
