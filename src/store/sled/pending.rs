//! The stories one write changes. Each is put into the batch once, at the
//! end of the write, so a story that arrives and gains comments in the
//! same write is encoded and stored once.

use std::collections::HashMap;

use super::StoreError;
use super::codec::{encode_item, story_key};
use crate::model::{Item, ItemId, Timestamp};

#[derive(Default)]
pub(super) struct Pending {
    stories: HashMap<ItemId, Story>,
    /// The links of the stories here, for comments that name their story
    /// by link: the in-memory index learns them only after the batch.
    links: HashMap<String, ItemId>,
}

struct Story {
    item: Item,
    /// The story's value, encoded before the write; dropped when the story
    /// changes again.
    encoded: Option<Vec<u8>>,
}

impl Pending {
    /// A story whose value was encoded before the write.
    pub fn put_encoded(&mut self, item: Item, encoded: Vec<u8>) {
        self.insert(item, Some(encoded));
    }

    /// A story to encode at the end of the write.
    pub fn put(&mut self, item: Item) {
        self.insert(item, None);
    }

    fn insert(&mut self, item: Item, encoded: Option<Vec<u8>>) {
        if let Some(link) = &item.link {
            self.links.insert(link.clone(), item.id);
        }
        self.stories.insert(item.id, Story { item, encoded });
    }

    pub fn contains(&self, id: &ItemId) -> bool {
        self.stories.contains_key(id)
    }

    /// The story here with this canonical link.
    pub fn linked(&self, link: &str) -> Option<ItemId> {
        self.links.get(link).copied()
    }

    /// Takes a story out to change it; [`Pending::put`] it back.
    pub fn take(&mut self, id: &ItemId) -> Option<Item> {
        self.stories.remove(id).map(|s| s.item)
    }

    /// A story here, to change in place.
    pub fn get_mut(&mut self, id: &ItemId) -> Option<&mut Item> {
        self.stories.get_mut(id).map(|s| {
            s.encoded = None;
            &mut s.item
        })
    }

    /// Puts every story into `batch`; those changed in this write are
    /// stamped `last_changed = now` and encoded.
    pub fn write(self, batch: &mut sled::Batch, now: Timestamp) -> Result<(), StoreError> {
        for Story { mut item, encoded } in self.stories.into_values() {
            let value = match encoded {
                Some(value) => value,
                None => {
                    item.last_changed = now;
                    encode_item(&item)?
                }
            };
            batch.insert(story_key(&item), value);
        }
        Ok(())
    }
}
