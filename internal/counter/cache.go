package counter

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/throughline/throughline/internal/store"
)

// Cache keeps counters in memory for the collector's hot path. Entries live
// for ttl, so a change made by another process (or the CLI) is seen within
// ttl; changes made through this process's API are seen at once (Forget).
// Unknown ids are remembered too, briefly, so a flood of hits for a counter
// that does not exist does not become a flood of queries.
type Cache struct {
	db  *store.DB
	ttl time.Duration

	mu      sync.RWMutex
	entries map[int64]cacheEntry
}

type cacheEntry struct {
	c       Counter
	missing bool
	expires time.Time
}

// maxCacheEntries bounds memory when junk ids arrive; the cache then starts over.
const maxCacheEntries = 100_000

// NewCache returns an empty cache over db.
func NewCache(db *store.DB, ttl time.Duration) *Cache {
	return &Cache{db: db, ttl: ttl, entries: map[int64]cacheEntry{}}
}

// Get returns the counter, or ErrNotFound.
func (c *Cache) Get(ctx context.Context, id int64) (Counter, error) {
	now := time.Now()
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		if e.missing {
			return Counter{}, ErrNotFound
		}
		return e.c, nil
	}
	ct, err := Get(ctx, c.db, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Counter{}, err
	}
	e = cacheEntry{c: ct, missing: err != nil, expires: now.Add(c.ttl)}
	if e.missing {
		e.expires = now.Add(min(c.ttl, 5*time.Second))
	}
	c.mu.Lock()
	if len(c.entries) >= maxCacheEntries {
		c.entries = map[int64]cacheEntry{}
	}
	c.entries[id] = e
	c.mu.Unlock()
	return ct, err
}

// Forget drops a counter so the next Get reads it afresh.
func (c *Cache) Forget(id int64) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}
