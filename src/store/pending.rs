//! The stories one write changes, for either backend. Each is written
//! once, at the end of the write, so a story that arrives and gains
//! comments in the same write is encoded and stored once.

use std::collections::HashMap;

use crate::model::{Item, ItemId, Timestamp};

#[derive(Default)]
pub(crate) struct Pending {
    stories: HashMap<ItemId, Story>,
    /// The links of the stories here, for comments that name their story
    /// by link: the in-memory index learns them only after the batch.
    links: HashMap<String, ItemId>,
}

struct Story {
    item: Item,
    /// The story's value as the backend encodes it, made before the
    /// write; dropped when the story changes again.
    encoded: Option<Vec<u8>>,
    /// Whether this write changed what the story says (retention taking
    /// a feed off it does not).
    changed: bool,
}

impl Pending {
    /// A story whose value was encoded before the write.
    pub fn put_encoded(&mut self, item: Item, encoded: Vec<u8>) {
        self.insert(item, Some(encoded), true);
    }

    /// A story to encode at the end of the write.
    pub fn put(&mut self, item: Item) {
        self.insert(item, None, true);
    }

    /// A story whose content this write leaves as it was: it keeps its
    /// `last_changed`.
    pub fn put_unchanged(&mut self, item: Item) {
        self.insert(item, None, false);
    }

    fn insert(&mut self, item: Item, encoded: Option<Vec<u8>>, changed: bool) {
        if let Some(link) = &item.link {
            self.links.insert(link.clone(), item.id);
        }
        self.stories.insert(
            item.id,
            Story {
                item,
                encoded,
                changed,
            },
        );
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
            s.changed = true;
            &mut s.item
        })
    }

    /// Every story, to write once each: those changed in this write are
    /// stamped `last_changed = now`, have their comment count noted in
    /// their history, and come without a value; the others with the value
    /// encoded before the write.
    pub fn finish(self, now: Timestamp) -> impl Iterator<Item = (Item, Option<Vec<u8>>)> {
        self.stories.into_values().map(
            move |Story {
                      mut item,
                      encoded,
                      changed,
                  }| {
                if encoded.is_none() && changed {
                    item.last_changed = now;
                    crate::stories::note_count(&mut item, now);
                }
                (item, encoded)
            },
        )
    }
}
