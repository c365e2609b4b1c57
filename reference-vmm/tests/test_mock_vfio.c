/* Unit tests of mock VFIO itself (mocks/mock_vfio*.c): the container, group, device,
 * DMA and IRQ rules it models, error injection, the call log and leak accounting. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/aarch64/kvm_arm64.h"
#include "mock_kvm.h"
#include "mock_vfio.h"

#define PAGE 4096ULL
#define LEVEL_FLAGS (VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED)
#define RW (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)
#define RWM (RW | VFIO_REGION_INFO_FLAG_MMAP)

struct env {
	struct mock_vfio *m;
	struct sys s;
};

/* Host: group 3 (IOMMU) with "dev-a" (RESET, 2 regions, level + edge irq) and "dev-b";
 * group 4 (IOMMU) with "dev-c"; no-IOMMU group 5 with "pl061"; group 6 not viable. */
static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->m = mock_vfio_new();
	assert_non_null(e->m);
	mock_vfio_set_quiet(e->m, true);
	e->s = mock_vfio_sys(e->m);
	assert_int_equal(mock_vfio_add_group(e->m, 3, false), 0);
	assert_int_equal(mock_vfio_add_group(e->m, 4, false), 0);
	assert_int_equal(mock_vfio_add_group(e->m, 5, true), 0);
	assert_int_equal(mock_vfio_add_group(e->m, 6, false), 0);
	assert_int_equal(mock_vfio_set_group_viable(e->m, 6, false), 0);
	assert_int_equal(mock_vfio_add_device(e->m, 3, "dev-a",
					      VFIO_DEVICE_FLAGS_PLATFORM | VFIO_DEVICE_FLAGS_RESET),
			 0);
	assert_int_equal(mock_vfio_add_region(e->m, "dev-a", 2 * PAGE, RWM), 0);
	assert_int_equal(mock_vfio_add_region(e->m, "dev-a", 0x18, RW), 1);
	assert_int_equal(mock_vfio_add_irq(e->m, "dev-a", 1, LEVEL_FLAGS), 0);
	assert_int_equal(mock_vfio_add_irq(e->m, "dev-a", 1, VFIO_IRQ_INFO_EVENTFD), 1);
	assert_int_equal(mock_vfio_add_device(e->m, 3, "dev-b", VFIO_DEVICE_FLAGS_PLATFORM), 0);
	assert_int_equal(mock_vfio_add_device(e->m, 4, "dev-c", VFIO_DEVICE_FLAGS_PLATFORM), 0);
	assert_int_equal(mock_vfio_add_device(e->m, 5, "pl061", VFIO_DEVICE_FLAGS_AMBA), 0);
	assert_int_equal(mock_vfio_add_region(e->m, "pl061", PAGE, RWM), 0);
	assert_int_equal(mock_vfio_add_irq(e->m, "pl061", 1, LEVEL_FLAGS), 0);
	assert_int_equal(mock_vfio_add_device(e->m, 6, "dev-d", VFIO_DEVICE_FLAGS_PLATFORM), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	mock_vfio_free(e->m);
	free(e);
	return 0;
}

static int set_container(struct env *e, int group, int container)
{
	int32_t fd = container;
	return sys_ioctl_ptr(&e->s, group, VFIO_GROUP_SET_CONTAINER, &fd);
}

/* container + group id attached + IOMMU type set; returns the group fd */
static int attach(struct env *e, int *container, unsigned int id, unsigned long type)
{
	char path[64];
	snprintf(path, sizeof(path),
		 type == VFIO_NOIOMMU_IOMMU ? "/dev/vfio/noiommu-%u" : "/dev/vfio/%u", id);
	if (*container < 0) {
		*container = sys_open(&e->s, "/dev/vfio/vfio", O_RDWR);
		assert_true(*container >= 0);
	}
	int g = sys_open(&e->s, path, O_RDWR);
	assert_true(g >= 0);
	assert_int_equal(set_container(e, g, *container), 0);
	if (sys_ioctl(&e->s, *container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) == 1 ||
	    type == VFIO_NOIOMMU_IOMMU) {
		int r = sys_ioctl(&e->s, *container, VFIO_SET_IOMMU, type);
		assert_true(r == 0 || r == -EINVAL); /* -EINVAL: already set */
	}
	return g;
}

static int device_fd(struct env *e, int group, const char *name)
{
	return sys_ioctl_ptr(&e->s, group, VFIO_GROUP_GET_DEVICE_FD, name);
}

static int set_irqs(struct env *e, int dev, uint32_t flags, uint32_t index, uint32_t start,
		    uint32_t count, const void *data, size_t dlen)
{
	uint8_t buf[sizeof(struct vfio_irq_set) + 16];
	struct vfio_irq_set *s = (struct vfio_irq_set *)buf;
	memset(buf, 0, sizeof(buf));
	s->argsz = (uint32_t)(sizeof(*s) + dlen);
	s->flags = flags;
	s->index = index;
	s->start = start;
	s->count = count;
	if (dlen)
		memcpy(buf + sizeof(*s), data, dlen);
	return sys_ioctl_ptr(&e->s, dev, VFIO_DEVICE_SET_IRQS, buf);
}

static int set_fd(struct env *e, int dev, uint32_t action, uint32_t index, int fd)
{
	int32_t v = fd;
	return set_irqs(e, dev, VFIO_IRQ_SET_DATA_EVENTFD | action, index, 0, 1, &v, sizeof(v));
}

static int unmask_none(struct env *e, int dev, uint32_t index)
{
	return set_irqs(e, dev, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, index, 0, 1,
			NULL, 0);
}

static uint64_t drain(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static struct mock_vfio_irq_state irq_state(struct env *e, const char *dev, unsigned int idx)
{
	struct mock_vfio_irq_state st;
	assert_int_equal(mock_vfio_irq_state(e->m, dev, idx, &st), 0);
	return st;
}

/* ---- container ---- */

static void test_container_basics(void **state)
{
	struct env *e = *state;
	int c = sys_open(&e->s, "/dev/vfio/vfio", O_RDWR);
	assert_true(c >= 0);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_GET_API_VERSION, 0), VFIO_API_VERSION);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 1);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU), 1);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 1);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU), 0);
	mock_vfio_set_iommu_support(e->m, false, true);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 0);
	mock_vfio_set_iommu_support(e->m, true, false);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 0);
	mock_vfio_set_api_version(e->m, 7);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_GET_API_VERSION, 0), 7);
	/* no group yet: SET_IOMMU and IOMMU ioctls are refused */
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -EINVAL);
	struct vfio_iommu_type1_dma_map mp = { .argsz = sizeof(mp) };
	assert_int_equal(sys_ioctl_ptr(&e->s, c, VFIO_IOMMU_MAP_DMA, &mp), -EINVAL);
	/* no read/write/mmap on a container */
	char b[4];
	assert_int_equal(sys_pread(&e->s, c, b, 4, 0), -EINVAL);
	int err = 0;
	assert_null(sys_mmap(&e->s, PAGE, PROT_READ, MAP_SHARED, c, 0, &err));
	assert_int_equal(err, -ENODEV);
	assert_int_equal(mock_vfio_nr_containers(e->m), 1);
	assert_int_equal(mock_vfio_open_fds_kind(e->m, MOCK_VFIO_FD_CONTAINER), 1);
	assert_int_equal(sys_close(&e->s, c), 0);
	assert_int_equal(sys_close(&e->s, c), -EBADF);
	assert_int_equal(mock_vfio_nr_containers(e->m), 0);
	assert_int_equal(mock_vfio_open_fds(e->m), 0);
	mock_vfio_set_container_node(e->m, false);
	assert_int_equal(sys_open(&e->s, "/dev/vfio/vfio", O_RDWR), -ENOENT);
}

static void test_paths(void **state)
{
	struct env *e = *state;
	int g = sys_open(&e->s, "/dev/vfio/3", O_RDWR);
	assert_true(g >= 0);
	assert_int_equal(sys_open(&e->s, "/dev/vfio/3", O_RDWR), -EBUSY);
	assert_int_equal(sys_open(&e->s, "/dev/vfio/noiommu-3", O_RDWR), -ENOENT);
	assert_int_equal(sys_open(&e->s, "/dev/vfio/5", O_RDWR), -ENOENT);
	assert_int_equal(sys_open(&e->s, "/dev/vfio/99", O_RDWR), -ENOENT);
	assert_int_equal(sys_open(&e->s, "/dev/vfio/3x", O_RDWR), -ENOENT);
	assert_int_equal(sys_open(&e->s, "/etc/passwd", O_RDONLY), -ENOENT);
	int n = sys_open(&e->s, "/dev/vfio/noiommu-5", O_RDWR);
	assert_true(n >= 0);
	assert_int_equal(sys_close(&e->s, g), 0);
	g = sys_open(&e->s, "/dev/vfio/3", O_RDWR);
	assert_true(g >= 0);
	sys_close(&e->s, g);
	sys_close(&e->s, n);
	struct mock_vfio_call call;
	assert_int_equal(mock_vfio_call_at(e->m, 0, &call), 0);
	assert_int_equal(call.req, MOCK_VFIO_OP_OPEN);
	assert_string_equal(call.path, "/dev/vfio/3");
	assert_int_equal(call.kind, MOCK_VFIO_FD_GROUP);
}

static void test_group_status_and_set_container(void **state)
{
	struct env *e = *state;
	struct vfio_group_status st = { .argsz = sizeof(st) };
	int c = sys_open(&e->s, "/dev/vfio/vfio", O_RDWR);
	int g = sys_open(&e->s, "/dev/vfio/3", O_RDWR);
	int bad = sys_open(&e->s, "/dev/vfio/6", O_RDWR);
	int ni = sys_open(&e->s, "/dev/vfio/noiommu-5", O_RDWR);
	int efd = sys_eventfd(&e->s, 0, 0);
	assert_true(c >= 0 && g >= 0 && bad >= 0 && ni >= 0 && efd >= 0);

	assert_int_equal(sys_ioctl_ptr(&e->s, g, VFIO_GROUP_GET_STATUS, &st), 0);
	assert_int_equal(st.flags, VFIO_GROUP_FLAGS_VIABLE);
	assert_int_equal(sys_ioctl_ptr(&e->s, bad, VFIO_GROUP_GET_STATUS, &st), 0);
	assert_int_equal(st.flags, 0);
	st.argsz = 4;
	assert_int_equal(sys_ioctl_ptr(&e->s, g, VFIO_GROUP_GET_STATUS, &st), -EINVAL);
	assert_int_equal(sys_ioctl(&e->s, g, VFIO_GROUP_GET_STATUS, 0), -EFAULT);
	st.argsz = sizeof(st);

	assert_int_equal(set_container(e, g, 1000), -EBADF);
	assert_int_equal(set_container(e, g, efd), -EINVAL);
	assert_int_equal(set_container(e, g, ni), -EINVAL); /* a group fd, not a container */
	assert_int_equal(set_container(e, bad, c), -EBUSY);
	assert_int_equal(sys_ioctl(&e->s, g, VFIO_GROUP_SET_CONTAINER, 0), -EFAULT);
	assert_int_equal(set_container(e, g, c), 0);
	assert_int_equal(set_container(e, g, c), -EINVAL);
	assert_int_equal(sys_ioctl_ptr(&e->s, g, VFIO_GROUP_GET_STATUS, &st), 0);
	assert_int_equal(st.flags, VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
	/* real and no-IOMMU groups cannot mix */
	assert_int_equal(set_container(e, ni, c), -EPERM);
	/* no-IOMMU needs CAP_SYS_RAWIO */
	int c2 = sys_open(&e->s, "/dev/vfio/vfio", O_RDWR);
	mock_vfio_set_rawio(e->m, false);
	assert_int_equal(set_container(e, ni, c2), -EPERM);
	mock_vfio_set_rawio(e->m, true);
	assert_int_equal(set_container(e, ni, c2), 0);
	/* with a no-IOMMU group attached only the noiommu driver is offered */
	assert_int_equal(sys_ioctl(&e->s, c2, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 0);
	assert_int_equal(sys_ioctl(&e->s, c2, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 1);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 0);
	assert_int_equal(sys_ioctl(&e->s, g, 0x1234, 0), -ENOTTY);

	/* unset */
	assert_int_equal(sys_ioctl(&e->s, bad, VFIO_GROUP_UNSET_CONTAINER, 0), -EINVAL);
	assert_int_equal(sys_ioctl(&e->s, g, VFIO_GROUP_UNSET_CONTAINER, 0), 0);
	struct mock_vfio_group_state gs;
	assert_int_equal(mock_vfio_group_state(e->m, 3, &gs), 0);
	assert_false(gs.attached);
	assert_true(gs.open);
	sys_close(&e->s, g);
	sys_close(&e->s, bad);
	sys_close(&e->s, ni);
	sys_close(&e->s, efd);
	sys_close(&e->s, c);
	sys_close(&e->s, c2);
	assert_int_equal(mock_vfio_open_fds(e->m), 0);
	assert_int_equal(mock_vfio_nr_containers(e->m), 0);
}

static void test_set_iommu(void **state)
{
	struct env *e = *state;
	int c = sys_open(&e->s, "/dev/vfio/vfio", O_RDWR);
	int g = sys_open(&e->s, "/dev/vfio/3", O_RDWR);
	assert_int_equal(set_container(e, g, c), 0);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), -ENODEV);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU), -ENODEV);
	mock_vfio_set_iommu_support(e->m, false, true);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -ENODEV);
	mock_vfio_set_iommu_support(e->m, true, true);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -EINVAL);
	/* the type1 driver answers now */
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 1);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL), 1);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 0);
	assert_int_equal(sys_ioctl(&e->s, c, 0x4321, 0), -ENOTTY);
	struct mock_vfio_group_state gs;
	assert_int_equal(mock_vfio_group_state(e->m, 3, &gs), 0);
	assert_true(gs.attached);
	assert_int_equal(gs.iommu, VFIO_TYPE1v2_IOMMU);
	/* a second group joins the container and its IOMMU */
	int g4 = sys_open(&e->s, "/dev/vfio/4", O_RDWR);
	assert_int_equal(set_container(e, g4, c), 0);
	assert_int_equal(mock_vfio_group_state(e->m, 4, &gs), 0);
	assert_int_equal(gs.iommu, VFIO_TYPE1v2_IOMMU);
	/* the last group leaving unsets the IOMMU */
	sys_close(&e->s, g);
	sys_close(&e->s, g4);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 1);
	struct vfio_iommu_type1_dma_map mp = { .argsz = sizeof(mp) };
	assert_int_equal(sys_ioctl_ptr(&e->s, c, VFIO_IOMMU_MAP_DMA, &mp), -EINVAL);
	sys_close(&e->s, c);

	/* no-IOMMU container: IOMMU ioctls are not there */
	c = -1;
	g = attach(e, &c, 5, VFIO_NOIOMMU_IOMMU);
	assert_int_equal(sys_ioctl_ptr(&e->s, c, VFIO_IOMMU_MAP_DMA, &mp), -ENOTTY);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 1);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 0);
	sys_close(&e->s, g);
	sys_close(&e->s, c);
	assert_int_equal(mock_vfio_open_fds(e->m), 0);
}

static void test_get_device_fd(void **state)
{
	struct env *e = *state;
	int c = sys_open(&e->s, "/dev/vfio/vfio", O_RDWR);
	int g = sys_open(&e->s, "/dev/vfio/3", O_RDWR);
	assert_int_equal(device_fd(e, g, "dev-a"), -EINVAL); /* no container */
	assert_int_equal(set_container(e, g, c), 0);
	assert_int_equal(device_fd(e, g, "dev-a"), -EINVAL); /* no IOMMU */
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
	assert_int_equal(device_fd(e, g, "nope"), -ENODEV);
	assert_int_equal(device_fd(e, g, "dev-c"), -ENODEV); /* in group 4 */
	assert_int_equal(sys_ioctl(&e->s, g, VFIO_GROUP_GET_DEVICE_FD, 0), -EFAULT);
	int a = device_fd(e, g, "dev-a");
	int b = device_fd(e, g, "dev-b");
	int a2 = device_fd(e, g, "dev-a"); /* a device may be opened twice */
	assert_true(a >= 0 && b >= 0 && a2 >= 0);
	struct mock_vfio_dev_state ds;
	assert_int_equal(mock_vfio_dev_state(e->m, "dev-a", &ds), 0);
	assert_int_equal(ds.open_files, 2);
	assert_int_equal(ds.opens, 2);
	assert_int_equal(sys_ioctl(&e->s, g, VFIO_GROUP_UNSET_CONTAINER, 0), -EBUSY);
	/* the group fd goes first: the group stays attached while devices are open */
	sys_close(&e->s, g);
	struct mock_vfio_group_state gs;
	assert_int_equal(mock_vfio_group_state(e->m, 3, &gs), 0);
	assert_false(gs.open);
	assert_true(gs.attached);
	assert_int_equal(gs.dev_files, 3);
	sys_close(&e->s, a);
	sys_close(&e->s, a2);
	assert_int_equal(mock_vfio_dev_state(e->m, "dev-a", &ds), 0);
	assert_int_equal(ds.open_files, 0);
	assert_int_equal(ds.implicit_resets, 1);
	sys_close(&e->s, b);
	assert_int_equal(mock_vfio_group_state(e->m, 3, &gs), 0);
	assert_false(gs.attached);
	sys_close(&e->s, c);
	assert_int_equal(mock_vfio_open_fds(e->m), 0);
	assert_int_equal(mock_vfio_nr_containers(e->m), 0);
}

/* ---- devices ---- */

static void test_device_info(void **state)
{
	struct env *e = *state;
	int c = -1;
	int g = attach(e, &c, 3, VFIO_TYPE1v2_IOMMU);
	int d = device_fd(e, g, "dev-a");
	assert_true(d >= 0);
	struct vfio_device_info info = { .argsz = sizeof(info) };
	assert_int_equal(sys_ioctl_ptr(&e->s, d, VFIO_DEVICE_GET_INFO, &info), 0);
	assert_int_equal(info.flags, VFIO_DEVICE_FLAGS_PLATFORM | VFIO_DEVICE_FLAGS_RESET);
	assert_int_equal(info.num_regions, 2);
	assert_int_equal(info.num_irqs, 2);
	info.argsz = 8;
	assert_int_equal(sys_ioctl_ptr(&e->s, d, VFIO_DEVICE_GET_INFO, &info), -EINVAL);

	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = 1 };
	assert_int_equal(sys_ioctl_ptr(&e->s, d, VFIO_DEVICE_GET_REGION_INFO, &ri), 0);
	assert_int_equal(ri.size, 0x18);
	assert_int_equal(ri.offset, 1ULL << 40);
	assert_int_equal(ri.flags, RW);
	ri.index = 2;
	assert_int_equal(sys_ioctl_ptr(&e->s, d, VFIO_DEVICE_GET_REGION_INFO, &ri), -EINVAL);
	ri.index = 0;
	ri.argsz = 16;
	assert_int_equal(sys_ioctl_ptr(&e->s, d, VFIO_DEVICE_GET_REGION_INFO, &ri), -EINVAL);

	struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = 0 };
	assert_int_equal(sys_ioctl_ptr(&e->s, d, VFIO_DEVICE_GET_IRQ_INFO, &ii), 0);
	assert_int_equal(ii.flags, LEVEL_FLAGS);
	assert_int_equal(ii.count, 1);
	ii.index = 2;
	assert_int_equal(sys_ioctl_ptr(&e->s, d, VFIO_DEVICE_GET_IRQ_INFO, &ii), -EINVAL);
	ii.index = 0;
	ii.argsz = 8;
	assert_int_equal(sys_ioctl_ptr(&e->s, d, VFIO_DEVICE_GET_IRQ_INFO, &ii), -EINVAL);
	assert_int_equal(sys_ioctl(&e->s, d, 0x5555, 0), -ENOTTY);

	/* reset */
	assert_int_equal(sys_ioctl(&e->s, d, VFIO_DEVICE_RESET, 0), 0);
	struct mock_vfio_dev_state ds;
	assert_int_equal(mock_vfio_dev_state(e->m, "dev-a", &ds), 0);
	assert_int_equal(ds.resets, 1);
	int b = device_fd(e, g, "dev-b");
	assert_int_equal(sys_ioctl(&e->s, b, VFIO_DEVICE_RESET, 0), -EINVAL); /* no reset */
	sys_close(&e->s, b);
	sys_close(&e->s, d);
	sys_close(&e->s, g);
	sys_close(&e->s, c);
	assert_int_equal(mock_vfio_open_fds(e->m), 0);
}

static void test_region_rw(void **state)
{
	struct env *e = *state;
	int c = -1;
	int g = attach(e, &c, 3, VFIO_TYPE1v2_IOMMU);
	int d = device_fd(e, g, "dev-a");
	uint64_t size = 0;
	uint8_t *mem = mock_vfio_region_mem(e->m, "dev-a", 1, &size);
	assert_non_null(mem);
	assert_int_equal(size, 0x18);
	assert_null(mock_vfio_region_mem(e->m, "dev-a", 2, NULL));
	assert_null(mock_vfio_region_mem(e->m, "nope", 0, NULL));

	uint32_t v = 0x11223344, r = 0;
	off_t base = (off_t)(1ULL << 40);
	assert_int_equal(sys_pwrite(&e->s, d, &v, 4, base + 0x10), 4);
	assert_memory_equal(mem + 0x10, &v, 4);
	mem[0] = 0x5a;
	assert_int_equal(sys_pread(&e->s, d, &r, 1, base), 1);
	assert_int_equal(r, 0x5a);
	/* bounds */
	assert_int_equal(sys_pread(&e->s, d, &r, 4, base + 0x16), -EINVAL);
	assert_int_equal(sys_pread(&e->s, d, &r, 4, base + 0x18), -EINVAL);
	assert_int_equal(sys_pread(&e->s, d, &r, 4, (off_t)(2ULL << 40)), -EINVAL);
	assert_int_equal(sys_pread(&e->s, d, &r, 4, -1), -EINVAL);
	/* read()/write() with a file position are not modelled */
	assert_int_equal(sys_read(&e->s, d, &r, 4), -EINVAL);
	struct mock_vfio_dev_state ds;
	assert_int_equal(mock_vfio_dev_state(e->m, "dev-a", &ds), 0);
	assert_int_equal(ds.reads, 1);
	assert_int_equal(ds.writes, 1);
	sys_close(&e->s, d);

	/* a write-only and a read-only region */
	assert_int_equal(mock_vfio_add_device(e->m, 3, "ro", VFIO_DEVICE_FLAGS_PLATFORM), 0);
	assert_int_equal(mock_vfio_add_region(e->m, "ro", 0x100, VFIO_REGION_INFO_FLAG_READ), 0);
	assert_int_equal(mock_vfio_add_region(e->m, "ro", 0x100, VFIO_REGION_INFO_FLAG_WRITE), 1);
	d = device_fd(e, g, "ro");
	assert_int_equal(sys_pwrite(&e->s, d, &v, 4, 0), -EINVAL);
	assert_int_equal(sys_pread(&e->s, d, &r, 4, 0), 4);
	assert_int_equal(sys_pread(&e->s, d, &r, 4, base), -EINVAL);
	assert_int_equal(sys_pwrite(&e->s, d, &v, 4, base), 4);
	sys_close(&e->s, d);
	sys_close(&e->s, g);
	sys_close(&e->s, c);
}

static void test_region_mmap(void **state)
{
	struct env *e = *state;
	int c = -1, err = 0;
	int g = attach(e, &c, 3, VFIO_TYPE1v2_IOMMU);
	int d = device_fd(e, g, "dev-a");
	const int rw = PROT_READ | PROT_WRITE;

	/* region 1 has no MMAP flag */
	assert_null(sys_mmap(&e->s, PAGE, rw, MAP_SHARED, d, (off_t)(1ULL << 40), &err));
	assert_int_equal(err, -EINVAL);
	/* beyond the region, unaligned offset, private, no such region */
	assert_null(sys_mmap(&e->s, 3 * PAGE, rw, MAP_SHARED, d, 0, &err));
	assert_null(sys_mmap(&e->s, PAGE, rw, MAP_SHARED, d, (off_t)PAGE * 2, &err));
	assert_null(sys_mmap(&e->s, PAGE, rw, MAP_SHARED, d, 100, &err));
	assert_null(sys_mmap(&e->s, PAGE, rw, MAP_PRIVATE, d, 0, &err));
	assert_null(sys_mmap(&e->s, PAGE, rw, MAP_SHARED, d, (off_t)(5ULL << 40), &err));
	assert_int_equal(mock_vfio_live_mappings(e->m), 0);

	/* whole region and second page */
	uint8_t *p = sys_mmap(&e->s, 2 * PAGE, rw, MAP_SHARED, d, 0, &err);
	assert_non_null(p);
	uint8_t *q = sys_mmap(&e->s, PAGE, PROT_READ, MAP_SHARED, d, (off_t)PAGE, &err);
	assert_non_null(q);
	uint8_t *mem = mock_vfio_region_mem(e->m, "dev-a", 0, NULL);
	p[PAGE + 8] = 0x77;
	assert_int_equal(mem[PAGE + 8], 0x77);
	assert_int_equal(q[8], 0x77);
	mem[0] = 0x42;
	assert_int_equal(p[0], 0x42);
	assert_int_equal(mock_vfio_live_mappings(e->m), 2);
	/* partial unmaps are refused, unknown addresses too */
	assert_int_equal(sys_munmap(&e->s, p, PAGE), -EINVAL);
	assert_int_equal(sys_munmap(&e->s, mem, PAGE), -EINVAL);
	/* the mapping keeps the device file open after its fd is closed */
	sys_close(&e->s, d);
	struct mock_vfio_dev_state ds;
	assert_int_equal(mock_vfio_dev_state(e->m, "dev-a", &ds), 0);
	assert_int_equal(ds.open_files, 1);
	assert_int_equal(sys_munmap(&e->s, p, 2 * PAGE), 0);
	assert_int_equal(sys_munmap(&e->s, q, PAGE), 0);
	assert_int_equal(mock_vfio_dev_state(e->m, "dev-a", &ds), 0);
	assert_int_equal(ds.open_files, 0);
	assert_int_equal(mock_vfio_live_mappings(e->m), 0);

	/* read-only region: no PROT_WRITE mapping; MMAP on a sub-page region fails */
	assert_int_equal(mock_vfio_add_device(e->m, 3, "rom", VFIO_DEVICE_FLAGS_PLATFORM), 0);
	assert_int_equal(
		mock_vfio_add_region(e->m, "rom", PAGE,
				     VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP),
		0);
	assert_int_equal(mock_vfio_add_region(e->m, "rom", 0x18, RWM), 1);
	d = device_fd(e, g, "rom");
	assert_null(sys_mmap(&e->s, PAGE, rw, MAP_SHARED, d, 0, &err));
	assert_int_equal(err, -EINVAL);
	p = sys_mmap(&e->s, PAGE, PROT_READ, MAP_SHARED, d, 0, &err);
	assert_non_null(p);
	assert_null(sys_mmap(&e->s, PAGE, rw, MAP_SHARED, d, (off_t)(1ULL << 40), &err));
	assert_int_equal(sys_munmap(&e->s, p, PAGE), 0);
	sys_close(&e->s, d);
	sys_close(&e->s, g);
	sys_close(&e->s, c);
	assert_int_equal(mock_vfio_open_fds(e->m), 0);
}

/* ---- DMA ---- */

static int map(struct env *e, int c, uint64_t iova, void *va, uint64_t size, uint32_t flags)
{
	struct vfio_iommu_type1_dma_map mp = {
		.argsz = sizeof(mp),
		.flags = flags,
		.vaddr = (uint64_t)(uintptr_t)va,
		.iova = iova,
		.size = size,
	};
	return sys_ioctl_ptr(&e->s, c, VFIO_IOMMU_MAP_DMA, &mp);
}

static int unmap(struct env *e, int c, uint64_t iova, uint64_t size, uint32_t flags, uint64_t *done)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.flags = flags,
		.iova = iova,
		.size = size,
	};
	int r = sys_ioctl_ptr(&e->s, c, VFIO_IOMMU_UNMAP_DMA, &u);
	if (done)
		*done = u.size;
	return r;
}

static void test_dma(void **state)
{
	struct env *e = *state;
	const uint32_t RWF = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	int c = -1, err = 0;
	int g = attach(e, &c, 3, VFIO_TYPE1v2_IOMMU);
	uint8_t *ram = sys_mmap(&e->s, 16 * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &err);
	assert_non_null(ram);
	uint64_t done;

	assert_int_equal(map(e, c, 0x40000000, ram, 8 * PAGE, RWF), 0);
	assert_int_equal(map(e, c, 0x40000000, ram, 8 * PAGE, RWF), -EEXIST);
	assert_int_equal(map(e, c, 0x40000000 + 7 * PAGE, ram, 2 * PAGE, RWF), -EEXIST);
	assert_int_equal(map(e, c, 0x40008000, ram + 8 * PAGE, 8 * PAGE, 0), -EINVAL);
	assert_int_equal(map(e, c, 0x40008000, ram + 8 * PAGE, 8 * PAGE, 1U << 7), -EINVAL);
	assert_int_equal(
		map(e, c, 0x40008000, ram + 8 * PAGE, 8 * PAGE, RWF | VFIO_DMA_MAP_FLAG_VADDR),
		-EINVAL);
	assert_int_equal(map(e, c, 0x40008000, ram + 8 * PAGE, 0, RWF), -EINVAL);
	assert_int_equal(map(e, c, 0x40008001, ram + 8 * PAGE, PAGE, RWF), -EINVAL);
	assert_int_equal(map(e, c, 0x40008000, ram + 8 * PAGE + 1, PAGE, RWF), -EINVAL);
	assert_int_equal(map(e, c, 0x40008000, ram + 8 * PAGE, 100, RWF), -EINVAL);
	assert_int_equal(map(e, c, ~0ULL - PAGE + 1, ram + 8 * PAGE, 2 * PAGE, RWF), -EINVAL);
	/* host memory that is not mapped cannot be pinned */
	assert_int_equal(map(e, c, 0x80000000, (void *)(uintptr_t)0x1000, PAGE, RWF), -EFAULT);
	struct vfio_iommu_type1_dma_map small = { .argsz = 8 };
	assert_int_equal(sys_ioctl_ptr(&e->s, c, VFIO_IOMMU_MAP_DMA, &small), -EINVAL);
	assert_int_equal(map(e, c, 0x40008000, ram + 8 * PAGE, 8 * PAGE, RWF), 0);
	assert_int_equal(mock_vfio_nr_dma(e->m), 2);
	struct mock_vfio_dma dm;
	assert_int_equal(mock_vfio_dma_at(e->m, 1, &dm), 0);
	assert_int_equal(dm.iova, 0x40008000);
	assert_int_equal(dm.vaddr, (uint64_t)(uintptr_t)(ram + 8 * PAGE));
	assert_int_equal(dm.size, 8 * PAGE);
	assert_int_equal(dm.flags, RWF);
	assert_int_equal(mock_vfio_dma_at(e->m, 2, &dm), -ENOENT);

	/* unmap: splitting a mapping is refused (v2), unaligned too */
	assert_int_equal(unmap(e, c, 0x40000000, PAGE, 0, NULL), -EINVAL);
	assert_int_equal(unmap(e, c, 0x40000000 + PAGE, 7 * PAGE, 0, NULL), -EINVAL);
	assert_int_equal(unmap(e, c, 0x40000000, 100, 0, NULL), -EINVAL);
	assert_int_equal(unmap(e, c, 0x40000000, 0, 0, NULL), -EINVAL);
	assert_int_equal(unmap(e, c, 0x40000000, 8 * PAGE, 1U << 5, NULL), -EINVAL);
	assert_int_equal(unmap(e, c, 0x40000000, 8 * PAGE, VFIO_DMA_UNMAP_FLAG_ALL, NULL), -EINVAL);
	assert_int_equal(unmap(e, c, 0x40000000, 8 * PAGE, 0, &done), 0);
	assert_int_equal(done, 8 * PAGE);
	assert_int_equal(mock_vfio_violations(e->m), 0);
	/* unknown range: 0 and size 0, as Linux, and a violation */
	assert_int_equal(unmap(e, c, 0x40000000, 8 * PAGE, 0, &done), 0);
	assert_int_equal(done, 0);
	assert_int_equal(mock_vfio_violations(e->m), 1);
	assert_non_null(strstr(mock_vfio_violation(e->m, 0), "no mapping"));
	assert_null(mock_vfio_violation(e->m, 1));
	/* a range covering several mappings */
	assert_int_equal(map(e, c, 0x40000000, ram, 8 * PAGE, RWF), 0);
	assert_int_equal(unmap(e, c, 0x40000000, 16 * PAGE, 0, &done), 0);
	assert_int_equal(done, 16 * PAGE);
	assert_int_equal(mock_vfio_nr_dma(e->m), 0);
	/* unmap all */
	assert_int_equal(map(e, c, 0x40000000, ram, 8 * PAGE, RWF), 0);
	assert_int_equal(map(e, c, 0x50000000, ram + 8 * PAGE, 8 * PAGE, RWF), 0);
	assert_int_equal(unmap(e, c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &done), 0);
	assert_int_equal(done, 16 * PAGE);
	/* the last group leaving drops the DMA map */
	assert_int_equal(map(e, c, 0x40000000, ram, 8 * PAGE, RWF), 0);
	assert_int_equal(mock_vfio_nr_dma(e->m), 1);
	sys_close(&e->s, g);
	assert_int_equal(mock_vfio_nr_dma(e->m), 0);
	sys_close(&e->s, c);
	assert_int_equal(sys_munmap(&e->s, ram, 16 * PAGE), 0);
	assert_int_equal(mock_vfio_live_mappings(e->m), 0);
}

/* ---- IRQs ---- */

static void test_set_irqs_validation(void **state)
{
	struct env *e = *state;
	int c = -1;
	int g = attach(e, &c, 3, VFIO_TYPE1v2_IOMMU);
	int d = device_fd(e, g, "dev-a");
	int efd = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	int32_t fds[2] = { efd, efd };
	uint8_t yes = 1;
	const uint32_t T = VFIO_IRQ_SET_ACTION_TRIGGER, U = VFIO_IRQ_SET_ACTION_UNMASK,
		       M = VFIO_IRQ_SET_ACTION_MASK, N = VFIO_IRQ_SET_DATA_NONE,
		       B = VFIO_IRQ_SET_DATA_BOOL, E = VFIO_IRQ_SET_DATA_EVENTFD;

	/* argsz, index, flags, range, data type, data length */
	uint8_t raw[sizeof(struct vfio_irq_set)] = { 0 };
	struct vfio_irq_set *s = (struct vfio_irq_set *)raw;
	s->argsz = 8;
	s->flags = N | T;
	s->count = 1;
	assert_int_equal(sys_ioctl_ptr(&e->s, d, VFIO_DEVICE_SET_IRQS, raw), -EINVAL);
	assert_int_equal(sys_ioctl(&e->s, d, VFIO_DEVICE_SET_IRQS, 0), -EFAULT);
	assert_int_equal(set_irqs(e, d, N | T, 2, 0, 1, NULL, 0), -EINVAL);
	assert_int_equal(set_irqs(e, d, N | T | (1U << 9), 0, 0, 1, NULL, 0), -EINVAL);
	assert_int_equal(set_irqs(e, d, N | T, 0, 1, 1, NULL, 0), -EINVAL);
	assert_int_equal(set_irqs(e, d, N | T, 0, 0, 2, NULL, 0), -EINVAL);
	assert_int_equal(set_irqs(e, d, N | B | T, 0, 0, 1, &yes, 1), -EINVAL);
	assert_int_equal(set_irqs(e, d, E | T, 0, 0, 1, fds, 2), -EINVAL); /* short data */
	/* actions */
	assert_int_equal(set_irqs(e, d, N, 0, 0, 1, NULL, 0), -ENOTTY);
	assert_int_equal(set_irqs(e, d, N | T | U, 0, 0, 1, NULL, 0), -ENOTTY);
	assert_int_equal(set_irqs(e, d, N | U, 1, 0, 1, NULL, 0), -ENOTTY); /* edge: not maskable */
	assert_int_equal(set_irqs(e, d, N | M, 1, 0, 1, NULL, 0), -ENOTTY);
	assert_int_equal(set_fd(e, d, M, 0, efd), -EINVAL); /* as Linux: vfio-platform rejects a mask eventfd */
	/* eventfd checks */
	assert_int_equal(set_fd(e, d, T, 0, 999), -EBADF);
	assert_int_equal(set_fd(e, d, T, 0, d), -EINVAL);
	assert_int_equal(set_fd(e, d, U, 0, g), -EINVAL);
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(set_fd(e, d, T, 0, pipefd[0]), -EINVAL);
	close(pipefd[0]);
	close(pipefd[1]);
	/* valid: set, replace, unregister; count 0 disables the index */
	assert_int_equal(set_fd(e, d, T, 0, efd), 0);
	assert_true(irq_state(e, "dev-a", 0).trigger_set);
	assert_int_equal(irq_state(e, "dev-a", 0).trigger_fd, efd);
	assert_int_equal(set_fd(e, d, T, 0, -1), 0);
	assert_false(irq_state(e, "dev-a", 0).trigger_set);
	assert_int_equal(set_fd(e, d, T, 0, efd), 0);
	assert_int_equal(set_irqs(e, d, N | T, 0, 0, 0, NULL, 0), 0);
	assert_false(irq_state(e, "dev-a", 0).trigger_set);
	assert_int_equal(set_fd(e, d, U, 0, efd), 0);
	assert_true(irq_state(e, "dev-a", 0).unmask_set);
	assert_int_equal(set_fd(e, d, U, 0, -1), 0);
	assert_false(irq_state(e, "dev-a", 0).unmask_set);
	/* mask / unmask with NONE and BOOL */
	assert_int_equal(set_irqs(e, d, N | M, 0, 0, 1, NULL, 0), 0);
	assert_true(irq_state(e, "dev-a", 0).masked);
	uint8_t no = 0;
	assert_int_equal(set_irqs(e, d, B | U, 0, 0, 1, &no, 1), 0);
	assert_true(irq_state(e, "dev-a", 0).masked);
	assert_int_equal(set_irqs(e, d, B | U, 0, 0, 1, &yes, 1), 0);
	assert_false(irq_state(e, "dev-a", 0).masked);
	assert_int_equal(set_irqs(e, d, B | M, 0, 0, 1, &yes, 1), 0);
	assert_int_equal(unmask_none(e, d, 0), 0);
	struct mock_vfio_irq_state st = irq_state(e, "dev-a", 0);
	assert_int_equal(st.masks, 2);
	assert_int_equal(st.unmasks, 2);
	assert_int_equal(st.unmask_requests, 2);
	assert_int_equal(mock_vfio_count_set_irqs(e->m, 0, N | U), 1);
	assert_int_equal(mock_vfio_count_set_irqs(e->m, 0, E | T), 3);

	/* the log decodes SET_IRQS */
	struct mock_vfio_call call;
	size_t n = mock_vfio_nr_calls(e->m);
	assert_int_equal(mock_vfio_call_at(e->m, n - 1, &call), 0);
	assert_int_equal(call.req, VFIO_DEVICE_SET_IRQS);
	assert_int_equal(call.flags, N | U);
	assert_int_equal(call.index, 0);
	assert_int_equal(call.count, 1);
	assert_int_equal(call.data_fd, -1);
	sys_close(&e->s, efd);
	sys_close(&e->s, d);
	sys_close(&e->s, g);
	sys_close(&e->s, c);
}

static void test_level_irq(void **state)
{
	struct env *e = *state;
	int c = -1;
	int g = attach(e, &c, 3, VFIO_TYPE1v2_IOMMU);
	int d = device_fd(e, g, "dev-a");
	int t = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	int u = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	uint64_t one = 1;
	const uint32_t T = VFIO_IRQ_SET_ACTION_TRIGGER, U = VFIO_IRQ_SET_ACTION_UNMASK;

	/* asserted before a trigger exists: fires when the trigger is set */
	assert_int_equal(mock_vfio_irq_raise(e->m, "dev-a", 0), 0);
	assert_int_equal(irq_state(e, "dev-a", 0).signals, 0);
	assert_int_equal(set_fd(e, d, U, 0, u), 0);
	assert_int_equal(set_fd(e, d, T, 0, t), 0);
	struct mock_vfio_irq_state st = irq_state(e, "dev-a", 0);
	assert_int_equal(st.signals, 1);
	assert_true(st.masked);
	assert_true(st.line);
	assert_int_equal(drain(t), 1);
	/* masked: nothing more while the line stays up */
	assert_int_equal(mock_vfio_irq_raise(e->m, "dev-a", 0), 0);
	assert_int_equal(irq_state(e, "dev-a", 0).signals, 1);
	/* unmask through the eventfd with the line still high: fires again */
	assert_int_equal(write(u, &one, 8), 8);
	st = irq_state(e, "dev-a", 0);
	assert_int_equal(st.unmasks, 1);
	assert_int_equal(st.signals, 2);
	assert_true(st.masked);
	assert_int_equal(drain(t), 1);
	/* the device deasserts, then the resample unmasks: quiet */
	assert_int_equal(mock_vfio_irq_lower(e->m, "dev-a", 0), 0);
	assert_int_equal(write(u, &one, 8), 8);
	assert_int_equal(mock_vfio_poll(e->m), 1);
	assert_int_equal(mock_vfio_poll(e->m), 0);
	st = irq_state(e, "dev-a", 0);
	assert_false(st.masked);
	assert_int_equal(st.signals, 2);
	assert_int_equal(st.automasks, 2);
	/* loopback trigger: DATA_NONE runs the handler */
	assert_int_equal(set_irqs(e, d, VFIO_IRQ_SET_DATA_NONE | T, 0, 0, 1, NULL, 0), 0);
	assert_int_equal(irq_state(e, "dev-a", 0).signals, 3);
	assert_true(irq_state(e, "dev-a", 0).masked);
	/* an unmask eventfd already signalled at registration unmasks at once */
	assert_int_equal(set_fd(e, d, U, 0, -1), 0);
	assert_int_equal(write(u, &one, 8), 8);
	assert_int_equal(set_fd(e, d, U, 0, u), 0);
	assert_false(irq_state(e, "dev-a", 0).masked);
	assert_int_equal(drain(u), 0);

	/* reset deasserts the line but keeps the mask (as Linux) */
	assert_int_equal(mock_vfio_irq_raise(e->m, "dev-a", 0), 0);
	assert_true(irq_state(e, "dev-a", 0).masked);
	assert_int_equal(sys_ioctl(&e->s, d, VFIO_DEVICE_RESET, 0), 0);
	st = irq_state(e, "dev-a", 0);
	assert_false(st.line);
	assert_true(st.masked);
	/* disabling the trigger keeps the mask as well */
	assert_int_equal(set_fd(e, d, T, 0, -1), 0);
	assert_true(irq_state(e, "dev-a", 0).masked);

	/* the last close drops the eventfds; the next open starts unmasked */
	sys_close(&e->s, d);
	st = irq_state(e, "dev-a", 0);
	assert_false(st.unmask_set);
	assert_false(st.trigger_set);
	d = device_fd(e, g, "dev-a");
	assert_false(irq_state(e, "dev-a", 0).masked);
	sys_close(&e->s, d);
	sys_close(&e->s, t);
	sys_close(&e->s, u);
	sys_close(&e->s, g);
	sys_close(&e->s, c);
	assert_int_equal(mock_vfio_open_fds(e->m), 0);
}

static void test_edge_irq(void **state)
{
	struct env *e = *state;
	int c = -1;
	int g = attach(e, &c, 3, VFIO_TYPE1v2_IOMMU);
	int d = device_fd(e, g, "dev-a");
	int t = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	uint8_t yes = 1;

	assert_int_equal(mock_vfio_irq_raise(e->m, "dev-a", 1), 0); /* no trigger: lost */
	assert_int_equal(irq_state(e, "dev-a", 1).lost, 1);
	assert_int_equal(set_fd(e, d, VFIO_IRQ_SET_ACTION_TRIGGER, 1, t), 0);
	assert_int_equal(irq_state(e, "dev-a", 1).signals, 0); /* edge: no replay */
	assert_int_equal(mock_vfio_irq_raise(e->m, "dev-a", 1), 0);
	assert_int_equal(mock_vfio_irq_raise(e->m, "dev-a", 1), 0);
	assert_int_equal(set_irqs(e, d, VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER, 1, 0,
				  1, &yes, 1),
			 0);
	struct mock_vfio_irq_state st = irq_state(e, "dev-a", 1);
	assert_int_equal(st.signals, 3);
	assert_false(st.masked);
	assert_int_equal(drain(t), 3);
	assert_int_equal(mock_vfio_irq_lower(e->m, "dev-a", 1), 0);
	assert_int_equal(mock_vfio_irq_raise(e->m, "dev-a", 7), -ENOENT);
	assert_int_equal(mock_vfio_irq_lower(e->m, "nope", 0), -ENOENT);

	/* the mock holds its own reference to the eventfd, as the kernel does */
	int keep = dup(t);
	sys_close(&e->s, t);
	assert_int_equal(mock_vfio_irq_raise(e->m, "dev-a", 1), 0);
	assert_int_equal(drain(keep), 1);
	close(keep);
	sys_close(&e->s, d);
	sys_close(&e->s, g);
	sys_close(&e->s, c);
	assert_int_equal(mock_vfio_open_fds(e->m), 0);
}

/* ---- injection, log, leaks, chaining ---- */

static void test_injection(void **state)
{
	struct env *e = *state;
	assert_int_equal(mock_vfio_fail_next(e->m, MOCK_VFIO_OP_OPEN, -EACCES), 0);
	assert_int_equal(sys_open(&e->s, "/dev/vfio/vfio", O_RDWR), -EACCES);
	int c = sys_open(&e->s, "/dev/vfio/vfio", O_RDWR);
	assert_true(c >= 0);
	assert_int_equal(mock_vfio_fail_nth(e->m, VFIO_CHECK_EXTENSION, 2, -EIO), 0);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 1);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), -EIO);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 1);
	assert_int_equal(mock_vfio_fail_always(e->m, VFIO_GET_API_VERSION, -ENOSYS), 0);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_GET_API_VERSION, 0), -ENOSYS);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_GET_API_VERSION, 0), -ENOSYS);
	mock_vfio_fail_clear(e->m);
	assert_int_equal(sys_ioctl(&e->s, c, VFIO_GET_API_VERSION, 0), 0);
	assert_int_equal(mock_vfio_fail_next(e->m, VFIO_GET_API_VERSION, 5), -EINVAL);
	assert_int_equal(mock_vfio_fail_nth(e->m, VFIO_GET_API_VERSION, 0, -EIO), -EINVAL);
	assert_int_equal(mock_vfio_fail_next(e->m, MOCK_VFIO_OP_CLOSE, -EINTR), 0);
	assert_int_equal(sys_close(&e->s, c), -EINTR);
	assert_int_equal(mock_vfio_open_fds(e->m), 1); /* an injected failure has no effect */
	assert_int_equal(mock_vfio_fail_next(e->m, MOCK_VFIO_OP_EVENTFD, -EMFILE), 0);
	assert_int_equal(sys_eventfd(&e->s, 0, 0), -EMFILE);
	/* the log */
	size_t n = mock_vfio_nr_calls(e->m);
	struct mock_vfio_call call;
	assert_int_equal(mock_vfio_call_at(e->m, n - 1, &call), 0);
	assert_int_equal(call.req, MOCK_VFIO_OP_EVENTFD);
	assert_true(call.injected);
	assert_int_equal(call.result, -EMFILE);
	assert_int_equal(mock_vfio_call_at(e->m, n, &call), -ENOENT);
	assert_int_equal(mock_vfio_count_calls(e->m, VFIO_GET_API_VERSION), 3);
	mock_vfio_clear_calls(e->m);
	assert_int_equal(mock_vfio_nr_calls(e->m), 0);
	assert_int_equal(sys_close(&e->s, c), 0);
}

static void test_config_errors(void **state)
{
	struct env *e = *state;
	assert_int_equal(mock_vfio_add_group(e->m, 3, false), -EEXIST);
	assert_int_equal(mock_vfio_set_group_viable(e->m, 42, true), -ENOENT);
	assert_int_equal(mock_vfio_add_device(e->m, 42, "x", 0), -ENOENT);
	assert_int_equal(mock_vfio_add_device(e->m, 3, "dev-a", 0), -EEXIST);
	assert_int_equal(mock_vfio_add_region(e->m, "nope", PAGE, RW), -ENOENT);
	assert_int_equal(mock_vfio_add_irq(e->m, "nope", 1, 0), -ENOENT);
	assert_int_equal(mock_vfio_add_irq(e->m, "dev-a", 2, 0), -EINVAL);
	struct mock_vfio_dev_state ds;
	struct mock_vfio_group_state gs;
	struct mock_vfio_irq_state is;
	assert_int_equal(mock_vfio_dev_state(e->m, "nope", &ds), -ENOENT);
	assert_int_equal(mock_vfio_group_state(e->m, 42, &gs), -ENOENT);
	assert_int_equal(mock_vfio_irq_state(e->m, "dev-a", 9, &is), -ENOENT);
}

/* Free with everything still open: no leak (ASan), no crash. */
static void test_free_with_open_state(void **state)
{
	struct env *e = *state;
	int c = -1, err = 0;
	int g = attach(e, &c, 3, VFIO_TYPE1v2_IOMMU);
	int d = device_fd(e, g, "dev-a");
	int t = sys_eventfd(&e->s, 0, EFD_NONBLOCK);
	assert_int_equal(set_fd(e, d, VFIO_IRQ_SET_ACTION_TRIGGER, 0, t), 0);
	void *p = sys_mmap(&e->s, PAGE, PROT_READ, MAP_SHARED, d, 0, &err);
	assert_non_null(p);
	assert_int_equal(mock_vfio_open_fds(e->m), 4);
	assert_int_equal(mock_vfio_open_fds_kind(e->m, MOCK_VFIO_FD_DEVICE), 1);
	assert_int_equal(mock_vfio_open_fds_kind(e->m, MOCK_VFIO_FD_EVENTFD), 1);
	assert_int_equal(mock_vfio_live_mappings(e->m), 1);
	(void)g;
}

/* Behind mock KVM: one seam serves both, and KVM's resample unmasks the VFIO line. */
static void test_chained_behind_mock_kvm(void **state)
{
	struct env *e = *state;
	struct mock_kvm *k = mock_kvm_new();
	assert_non_null(k);
	mock_kvm_set_quiet(k, true);
	mock_kvm_set_fallback(k, &e->s);
	struct sys s = mock_kvm_sys(k);

	int kvm = sys_open(&s, "/dev/kvm", O_RDWR);
	int vm = sys_ioctl(&s, kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	assert_int_equal(sys_ioctl_ptr(&s, vm, KVM_CREATE_DEVICE, &cd), 0);
	uint64_t dist = 0x08000000, redist = 0x080a0000;
	struct kvm_device_attr a = { .group = A64_KVM_DEV_ARM_VGIC_GRP_ADDR,
				     .attr = A64_KVM_VGIC_V3_ADDR_TYPE_DIST,
				     .addr = (uint64_t)(uintptr_t)&dist };
	assert_int_equal(sys_ioctl_ptr(&s, (int)cd.fd, KVM_SET_DEVICE_ATTR, &a), 0);
	a.attr = A64_KVM_VGIC_V3_ADDR_TYPE_REDIST;
	a.addr = (uint64_t)(uintptr_t)&redist;
	assert_int_equal(sys_ioctl_ptr(&s, (int)cd.fd, KVM_SET_DEVICE_ATTR, &a), 0);
	struct kvm_device_attr init = { .group = A64_KVM_DEV_ARM_VGIC_GRP_CTRL,
					.attr = A64_KVM_DEV_ARM_VGIC_CTRL_INIT };
	assert_int_equal(sys_ioctl_ptr(&s, (int)cd.fd, KVM_SET_DEVICE_ATTR, &init), 0);

	/* VFIO through the KVM seam */
	int c = sys_open(&s, "/dev/vfio/vfio", O_RDWR);
	int g = sys_open(&s, "/dev/vfio/noiommu-5", O_RDWR);
	assert_true(c >= 0 && g >= 0);
	int32_t cfd = c;
	assert_int_equal(sys_ioctl_ptr(&s, g, VFIO_GROUP_SET_CONTAINER, &cfd), 0);
	assert_int_equal(sys_ioctl(&s, c, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), 0);
	int d = sys_ioctl_ptr(&s, g, VFIO_GROUP_GET_DEVICE_FD, "pl061");
	assert_true(d >= 0);
	int err = 0;
	void *p = sys_mmap(&s, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0, &err);
	assert_non_null(p);

	/* eventfds from mock KVM, KVM_IRQFD with resample, VFIO trigger + unmask */
	int t = sys_eventfd(&s, 0, EFD_NONBLOCK);
	int r = sys_eventfd(&s, 0, EFD_NONBLOCK);
	struct kvm_irqfd irqfd = { .fd = (uint32_t)t,
				   .gsi = 7,
				   .flags = KVM_IRQFD_FLAG_RESAMPLE,
				   .resamplefd = (uint32_t)r };
	assert_int_equal(sys_ioctl_ptr(&s, vm, KVM_IRQFD, &irqfd), 0);
	int32_t v = r;
	uint8_t buf[sizeof(struct vfio_irq_set) + 4];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	*set = (struct vfio_irq_set){ .argsz = sizeof(buf),
				      .flags = VFIO_IRQ_SET_DATA_EVENTFD |
					       VFIO_IRQ_SET_ACTION_UNMASK,
				      .count = 1 };
	memcpy(buf + sizeof(*set), &v, 4);
	assert_int_equal(sys_ioctl_ptr(&s, d, VFIO_DEVICE_SET_IRQS, buf), 0);
	v = t;
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	memcpy(buf + sizeof(*set), &v, 4);
	assert_int_equal(sys_ioctl_ptr(&s, d, VFIO_DEVICE_SET_IRQS, buf), 0);

	/* device interrupt -> SPI 39 held -> guest EOI -> resample -> VFIO unmasked */
	assert_int_equal(mock_vfio_irq_raise(e->m, "pl061", 0), 0);
	assert_int_equal(mock_kvm_irqfd_poll(k), 1);
	assert_int_equal(mock_kvm_irq_level(k, 39), 1);
	assert_true(irq_state(e, "pl061", 0).masked);
	assert_int_equal(mock_vfio_irq_lower(e->m, "pl061", 0), 0);
	assert_int_equal(mock_kvm_irqfd_resample(k, 7), 0);
	assert_int_equal(mock_kvm_irq_level(k, 39), 0);
	assert_false(irq_state(e, "pl061", 0).masked);

	/* teardown through the KVM seam */
	irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
	assert_int_equal(sys_ioctl_ptr(&s, vm, KVM_IRQFD, &irqfd), 0);
	assert_int_equal(sys_munmap(&s, p, PAGE), 0);
	assert_int_equal(sys_close(&s, d), 0);
	assert_int_equal(sys_close(&s, g), 0);
	assert_int_equal(sys_close(&s, c), 0);
	assert_int_equal(mock_vfio_open_fds(e->m), 0);
	assert_int_equal(mock_vfio_live_mappings(e->m), 0);
	assert_int_equal(mock_kvm_violations(k), 0);
	mock_kvm_free(k);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_container_basics),
		T(test_paths),
		T(test_group_status_and_set_container),
		T(test_set_iommu),
		T(test_get_device_fd),
		T(test_device_info),
		T(test_region_rw),
		T(test_region_mmap),
		T(test_dma),
		T(test_set_irqs_validation),
		T(test_level_irq),
		T(test_edge_irq),
		T(test_injection),
		T(test_config_errors),
		T(test_free_with_open_state),
		T(test_chained_behind_mock_kvm),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
