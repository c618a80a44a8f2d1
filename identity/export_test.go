package identity

// DummyPHC exposes the dummy hash verified for unknown users.
func DummyPHC(u *Users) string { return u.dummy }

// Verifications returns how many hash verifications Users have run.
func Verifications() int64 { return verifications.Load() }
