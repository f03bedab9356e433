// Package docs holds Holocron's guides (authoring.md) and their runnable
// example (example/poll). It has no code of its own: its test checks that
// every Go code block of a guide is a region of the compiled, tested
// example, so a guide cannot drift from code that builds.
package docs
