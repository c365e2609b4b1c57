/* sysfs lookups for VFIO passthrough (driver binding, IOMMU group, of_node) with
 * plain file calls under a configurable root, so tests can use a fake tree. */
#include "passthrough/vfio_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYSFS_MOUNT "/sys"

char *vfio_sysfs_resolve(const char *root, const char *path)
{
	size_t mlen = strlen(SYSFS_MOUNT);
	bool rebase = root && strcmp(root, SYSFS_MOUNT) != 0 &&
		      strncmp(path, SYSFS_MOUNT, mlen) == 0 &&
		      (path[mlen] == '/' || path[mlen] == '\0');
	char *out = NULL;

	if (!rebase)
		return strdup(path);
	if (asprintf(&out, "%s%s", root, path + mlen) < 0)
		return NULL;
	return out;
}

static int join(char *buf, size_t len, const char *dir, const char *entry)
{
	int n = snprintf(buf, len, "%s/%s", dir, entry);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int vfio_sysfs_link_name(const char *dir, const char *link, char *out, size_t outlen)
{
	char path[PATH_MAX], target[PATH_MAX];
	int r = join(path, sizeof(path), dir, link);
	if (r)
		return r;
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	while (n > 1 && target[n - 1] == '/')
		target[--n] = '\0';
	const char *base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= outlen)
		return -ENAMETOOLONG;
	strcpy(out, base);
	return 0;
}

char *vfio_sysfs_realpath(const char *dir, const char *entry)
{
	char path[PATH_MAX];
	if (join(path, sizeof(path), dir, entry)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	return realpath(path, NULL);
}

int vfio_sysfs_read_line(const char *dir, const char *entry, char *out, size_t outlen)
{
	char path[PATH_MAX];
	int r = join(path, sizeof(path), dir, entry);
	if (r)
		return r;
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(out, (int)outlen, f)) {
		r = ferror(f) ? -EIO : -ENODATA;
		fclose(f);
		return r;
	}
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

static int parse_uint(const char *s, unsigned int *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT_MAX)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

int vfio_sysfs_iommu_group(const char *dev_dir, unsigned int *id, bool *noiommu)
{
	static const char prefix[] = "noiommu-";
	char name[NAME_MAX + 1], gname[64];

	int r = vfio_sysfs_link_name(dev_dir, "iommu_group", name, sizeof(name));
	if (r)
		return r == -ENOENT ? -ENOENT : -EINVAL;
	*noiommu = strncmp(name, prefix, sizeof(prefix) - 1) == 0;
	r = parse_uint(name + (*noiommu ? sizeof(prefix) - 1 : 0), id);
	if (r)
		return r;
	/* the kernel names its fake no-IOMMU groups "vfio-noiommu" */
	char *gdir = vfio_sysfs_realpath(dev_dir, "iommu_group");
	if (gdir) {
		if (!vfio_sysfs_read_line(gdir, "name", gname, sizeof(gname)) &&
		    strcmp(gname, "vfio-noiommu") == 0)
			*noiommu = true;
		free(gdir);
	}
	return 0;
}
