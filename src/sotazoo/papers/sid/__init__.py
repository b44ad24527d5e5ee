"""SID: Learning to See in the Dark."""
