package harmonia_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/harmonia-ml/harmonia"
)

func TestDeleteLicense(t *testing.T) {
	t.Parallel()
	b := setup(t)
	used := b.license(t, "MIT")
	free := b.license(t, "Apache-2.0")
	ds := &harmonia.Dataset{Name: "d", Version: "1", Path: "d.tar", LicenseID: used.ID}
	require.NoError(t, b.store.CreateDataset(b.ctx, ds))
	err := b.store.DeleteLicense(b.ctx, used.ID)
	require.ErrorIs(t, err, harmonia.ErrConflict)
	require.Contains(t, err.Error(), "dataset")
	require.NoError(t, b.store.DeleteLicense(b.ctx, free.ID))
	require.ErrorIs(t, b.store.DeleteLicense(b.ctx, free.ID), harmonia.ErrNotFound)

	commercial := false
	l, err := b.store.UpdateLicense(b.ctx, used.ID, harmonia.LicenseUpdate{CommercialUse: &commercial})
	require.NoError(t, err)
	require.False(t, l.CommercialUse)
	got, err := b.store.GetLicenseBySPDXID(b.ctx, "MIT")
	require.NoError(t, err)
	require.Equal(t, l, got)
}
