// Package lab is the local product: real peers that tests and the demo run
// against on loopback. It owns the git servers (smart HTTP(S) through the
// real `git http-backend`, SSH running the real git-upload-pack and
// git-receive-pack, repositories with a lagging read replica), a
// Bitbucket-Cloud-shaped branch API backed by the same bare repositories,
// git fault injection as HTTP middleware (Faults), and the per-region edges
// with their fault table. Nothing here is used by an agent in production.
package lab
