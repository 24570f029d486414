package fillcast

import "time"

// The JSON bodies of the control plane's HTTP API that more than one part
// reads: the control plane writes them (controlplane/api), and the
// appliances, the control-plane client (controlplane/client), the demo and
// the benches read them. They are declared once, here, so that a field
// cannot drift between the side that writes it and the sides that read it.

// Playback is the body of GET /v1/playback/{title}: where a player may
// fetch a title, best first, with the signed token in each URL's path.
type Playback struct {
	Title    string `json:"title"`
	Protocol string `json:"protocol"` // "hls" or "dash"
	// URLs are the title's entry file (master.m3u8 or manifest.mpd) on
	// each steered appliance, best first, the origin last.
	URLs []string `json:"urls"`
	// SteeringURL is the HLS/DASH Content Steering manifest of the title.
	SteeringURL string `json:"steering_url"`
	// ExpiresAt is when the URLs' token expires, RFC 3339.
	ExpiresAt string `json:"expires_at"`
	// StreamID is the viewer's stream lease: kept alive by progress
	// events naming it (or POST /v1/streams/{id}/keepalive), ended by
	// DELETE /v1/streams/{id}, and given back as ?stream= when the player
	// asks for playback again, so that it stays one screen.
	StreamID string `json:"stream_id,omitempty"`
}

// Manifest is the body of GET /v1/appliances/{id}/manifest: an
// appliance's fill plan with the titles to hold (each by its file list's
// digest) and its site's fill window. The control plane sends it with
// an ETag, and If-None-Match gets a 304 while it is unchanged.
type Manifest struct {
	Appliance string `json:"appliance"`
	// Version grows with every plan of the appliance; an appliance never
	// goes back to an older one.
	Version uint64 `json:"version"`
	Site    string `json:"site,omitempty"`
	// FillWindow is the site's "HH:MM-HH:MM" in Timezone (an IANA name);
	// empty values leave the appliance's defaults.
	FillWindow string          `json:"fill_window,omitempty"`
	Timezone   string          `json:"timezone,omitempty"`
	Titles     []ManifestTitle `json:"titles"`
	// Catalog lists every ready title, planned here or not (an appliance
	// fills misses of any), with the directory and height of each of its
	// renditions, sorted by title id: what the appliance enforces a
	// playback token's maximum height with (auth.Limits).
	Catalog []TitleRenditions `json:"catalog,omitempty"`
}

// ManifestTitle is one planned title: its file list's digest and
// summary. The appliance fetches the list object (filelist.Path(ID,
// FilesDigest)) from its site's peers or the origin, or from the control
// plane, and holds every file in it.
type ManifestTitle struct {
	ID          string `json:"id"`
	FilesDigest string `json:"files_digest,omitempty"`
	Bytes       int64  `json:"bytes,omitempty"`
	FileCount   int    `json:"file_count,omitempty"`
	// Files is the whole list as control planes before file lists sent
	// it; an appliance still takes it when FilesDigest is empty.
	Files []File `json:"files,omitempty"`
}

// TitleRenditions is one title's renditions in a Manifest's Catalog.
type TitleRenditions struct {
	ID         string            `json:"id"`
	Renditions []RenditionHeight `json:"renditions"`
}

// RenditionHeight is a rendition's directory (its Rendition.ID) and its
// picture height in pixels: 0 for audio. A video rendition whose height
// the catalog does not know is left out, so that a restricted token is
// refused its files.
type RenditionHeight struct {
	ID     string `json:"id"`
	Height int    `json:"height"`
}

// ClusterStatus is the body of GET /v1/cluster: one control-plane node's
// view of the raft cluster. Clients read Members to learn every node's
// HTTP URL from any one of them.
type ClusterStatus struct {
	ID           string          `json:"id"`
	State        string          `json:"state"` // raft state: "Leader", "Follower", ...
	Leader       string          `json:"leader"`
	LeaderURL    string          `json:"leader_url,omitempty"`
	Term         string          `json:"term"`
	AppliedIndex uint64          `json:"applied_index"`
	Members      []ClusterMember `json:"members"`
}

// ClusterMember is one member of the cluster as GET /v1/cluster shows it.
type ClusterMember struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	// HTTPURL is where the member serves the API; empty until the member
	// has registered it.
	HTTPURL string `json:"http_url,omitempty"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
}

// FillPass is the answer of POST /v1/appliances/{id}/fillpass: a pass the
// appliance shows its site peers and the origin when it fills, until
// ExpiresAt (auth.SignFillPass).
type FillPass struct {
	Pass      string    `json:"pass"`
	ExpiresAt time.Time `json:"expires_at"`
}

// HeartbeatReply is the body of the answer to POST
// /v1/appliances/{id}/heartbeat: the takedowns (deleted titles) the
// appliance has to apply. The appliance sends the sequence number of the
// last takedown it applied (Heartbeat.TakedownSeq, 0 when it knows none),
// and the answer lists every later one the control plane's record still
// holds, oldest first, so an appliance that missed heartbeats (it was
// down or cut off) catches up with the first one that gets through.
type HeartbeatReply struct {
	// TakedownSeq is the sequence number of the latest takedown: the
	// appliance sends it back once it has applied Takedowns.
	TakedownSeq uint64 `json:"takedown_seq"`
	// Takedowns are the takedowns after the appliance's TakedownSeq
	// (every one the record holds when that is 0 or from another
	// history), oldest first.
	Takedowns []Takedown `json:"takedowns,omitempty"`
	// Resync says the appliance is further behind than the bounded
	// record reaches: takedowns it never saw are gone from it, so it
	// purges its whole cache and fills again.
	Resync bool `json:"resync,omitempty"`
}

// Takedown is one deleted title as heartbeats carry it.
type Takedown struct {
	Seq   uint64    `json:"seq"`
	Title string    `json:"title"`
	At    time.Time `json:"at"`
	// TokensUntil is the latest expiry (unix seconds) of a playback token
	// issued for the title before the takedown: tokens of the title that
	// expire at or before it are refused from then on; tokens issued for
	// the title after it is created again expire later and work.
	TokensUntil int64 `json:"tokens_until"`
}
