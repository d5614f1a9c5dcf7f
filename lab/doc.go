// Package lab is the local product: real peers that tests and the demo run
// against on loopback. It owns the git servers (smart HTTP(S) through the
// real `git http-backend`, SSH running the real git-upload-pack and
// git-receive-pack), a Bitbucket-Cloud-shaped branch API backed by the same
// bare repositories, and fault injection (Faults) usable by any HTTP server.
// Nothing here is used by an agent in production.
package lab
