// Package tracker records visits to a site: the t.js script that pages embed
// (ServeScript), the hits it sends, the sessions they make, and where each
// session came from.
//
// A hit — a pageview or an event — arrives as a Payload (ParseJSON for
// POST /collect, ParseQuery for /collect.gif) and is checked by Validate
// against its counter before anything is written: ids, URLs, lengths, the
// time it claims, and that every text it stores is one a database column
// holds (no NUL, valid UTF-8). The Hit that results goes to the Collector.
//
// The Collector writes hits with group commit: the hits that arrive
// together share one transaction, and Collect returns only once that
// transaction has committed, so a hit acknowledged is a hit stored — a
// crash loses nothing answered, and Close commits what is queued. Visitors
// are split among a few writers by their id; each writer alone decides its
// visitors' sessions, so hits of one visitor never race into two sessions,
// and keeps their latest sessions in memory (reading the database after a
// restart or on a miss). A batch only inserts (new sessions, hits, robots'
// counts, the report days they change): a session's last activity and
// counts are read from its hits. A batch the
// database refuses for what one hit holds is stored again without it
// (ErrRefused goes to that hit alone): no sender can fail another's hits.
// Robots, told by their User-Agent, are counted per day and not stored.
//
// Sessions are the server's, not the browser's: the browser only reports
// the last session id it was given. Rules (a counter's settings) start a new
// session after the inactivity timeout or on a new campaign or ad click;
// session ids are time-ordered UUIDs. Each new session is classified once
// (Classify): UTM tags first, then ad click ids, then the referrer, by the
// table in sources.csv. The visitor's IP address is stored anonymised.
// GetSession and ListSessions read sessions back for the API.
package tracker
