/* Mock KVM VM model: /dev/kvm and VM ioctls (memslots, vCPU creation, vGICv3 device,
 * KVM_IRQ_LINE, irqfd, ioeventfd) validated as Linux arm64 does, and their queries. */
#include "mock_kvm_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MK_VM_TYPE_IPA_MASK 0xffUL
#define MK_MIN_IPA_BITS 32U
#define MK_MEM_MAX_NR_PAGES ((1ULL << 31) - 1)
#define MK_VGIC_ALIGN 0x10000ULL
#define MK_VGIC_NR_PRIVATE 32U
#define MK_VGIC_MAX_RESERVED 1023U
#define MK_NR_IOBUS_DEVS 1000U
#define MK_IOEVENTFD_VALID                                                                  \
	(KVM_IOEVENTFD_FLAG_DATAMATCH | KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DEASSIGN | \
	 KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY)
#define MK_IOEVENTFD_BUS (KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY)

static uint64_t mk_ipa_size(const struct mk_vm *vm)
{
	return 1ULL << vm->ipa_bits;
}

static bool mk_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* ---- /dev/kvm ---- */

static int mk_create_vm(struct mock_kvm *m, unsigned long type)
{
	unsigned int bits = (unsigned int)(type & MK_VM_TYPE_IPA_MASK);
	unsigned int limit = (unsigned int)mk_get_cap(m, KVM_CAP_ARM_VM_IPA_SIZE);

	if (type & ~MK_VM_TYPE_IPA_MASK)
		return -EINVAL;
	if (bits && (bits > limit || bits < MK_MIN_IPA_BITS))
		return -EINVAL;
	if (m->vm) {
		if (m->vm->alive)
			return -EBUSY; /* mock: one live VM at a time */
		for (size_t i = 0; i < m->vm->nr_vcpus; i++)
			if (m->vm->vcpus[i]->in_run)
				return -EBUSY;
	}
	struct mk_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->type = type;
	vm->ipa_bits = bits ? bits : MOCK_KVM_DEFAULT_IPA_BITS;
	vm->vgic.fd = -1;
	if (m->vm && MK_GROW(m->old_vms, m->cap_old_vms, m->nr_old_vms + 1)) {
		free(vm);
		return -ENOMEM;
	}
	int fd = mk_fd_alloc(m, MOCK_KVM_FD_VM, vm, NULL);
	if (fd < 0) {
		free(vm);
		return fd;
	}
	if (m->vm)
		m->old_vms[m->nr_old_vms++] = m->vm;
	vm->alive = true;
	vm->refs = 1;
	m->vm = vm;
	return fd;
}

int mk_system_ioctl(struct mock_kvm *m, unsigned long req, unsigned long arg)
{
	switch (req) {
	case KVM_GET_API_VERSION:
		return arg ? -EINVAL : KVM_API_VERSION;
	case KVM_CHECK_EXTENSION:
		return mk_get_cap(m, (long)arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		return arg ? -EINVAL : (int)MOCK_KVM_VCPU_MMAP_SIZE;
	case KVM_CREATE_VM:
		return mk_create_vm(m, arg);
	default:
		return -EINVAL;
	}
}

/* ---- VM lifetime ---- */

void mk_vm_put(struct mock_kvm *m, struct mk_vm *vm)
{
	if (--vm->refs == 0)
		vm->alive = false; /* state is kept for inspection */
	pthread_cond_broadcast(&m->cond);
}

void mk_vm_free(struct mk_vm *vm)
{
	for (size_t i = 0; i < vm->nr_vcpus; i++)
		mk_vcpu_free(vm->vcpus[i]);
	free(vm->vcpus);
	free(vm->slots);
	free(vm->irqfds);
	free(vm->ioeventfds);
	free(vm);
}

/* ---- memslots ---- */

static struct kvm_userspace_memory_region *mk_slot_find(struct mk_vm *vm, uint32_t slot)
{
	for (size_t i = 0; i < vm->nr_slots; i++)
		if (vm->slots[i].slot == slot)
			return &vm->slots[i];
	return NULL;
}

static bool mk_slot_overlaps(struct mk_vm *vm, uint64_t gpa, uint64_t size, uint32_t except)
{
	for (size_t i = 0; i < vm->nr_slots; i++) {
		const struct kvm_userspace_memory_region *s = &vm->slots[i];
		if (s->slot != except &&
		    mk_ranges_overlap(gpa, size, s->guest_phys_addr, s->memory_size))
			return true;
	}
	return false;
}

bool mk_slot_uses(struct mk_vm *vm, const void *addr, size_t len)
{
	uint64_t a = (uint64_t)(uintptr_t)addr;

	for (size_t i = 0; i < vm->nr_slots; i++)
		if (mk_ranges_overlap(a, len, vm->slots[i].userspace_addr, vm->slots[i].memory_size))
			return true;
	return false;
}

static int mk_set_region(struct mock_kvm *m, struct mk_vm *vm,
			 const struct kvm_userspace_memory_region *r)
{
	const uint64_t pmask = MOCK_KVM_PAGE_SIZE - 1;
	uint32_t id = r->slot & 0xffff;

	if (r->flags & ~(uint32_t)(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY))
		return -EINVAL;
	if ((r->slot >> 16) != 0 || id >= (uint32_t)mk_get_cap(m, KVM_CAP_NR_MEMSLOTS))
		return -EINVAL;
	if ((r->memory_size & pmask) || (r->guest_phys_addr & pmask) || (r->userspace_addr & pmask))
		return -EINVAL;
	if (r->guest_phys_addr + r->memory_size < r->guest_phys_addr)
		return -EINVAL;
	if ((r->memory_size / MOCK_KVM_PAGE_SIZE) > MK_MEM_MAX_NR_PAGES)
		return -EINVAL;

	struct kvm_userspace_memory_region *old = mk_slot_find(vm, r->slot);
	if (!r->memory_size) {
		if (!old)
			return -EINVAL;
		size_t i = (size_t)(old - vm->slots);
		memmove(old, old + 1, (vm->nr_slots - i - 1) * sizeof(*old));
		vm->nr_slots--;
		return 0;
	}
	if (old) {
		if (r->userspace_addr != old->userspace_addr || r->memory_size != old->memory_size ||
		    ((r->flags ^ old->flags) & KVM_MEM_READONLY))
			return -EINVAL;
		if (r->guest_phys_addr == old->guest_phys_addr) {
			old->flags = r->flags; /* flags-only change (or none) */
			return 0;
		}
	}
	if (mk_slot_overlaps(vm, r->guest_phys_addr, r->memory_size, old ? old->slot : UINT32_MAX))
		return -EEXIST;
	if (r->guest_phys_addr + r->memory_size > mk_ipa_size(vm))
		return -EFAULT;
	if (!mk_map_find_range(m, r->userspace_addr, r->memory_size)) {
		mk_violation(m, "memslot %u: userspace_addr 0x%llx+0x%llx is not inside a mapping "
				"made through the sys seam",
			     r->slot, (unsigned long long)r->userspace_addr,
			     (unsigned long long)r->memory_size);
		return -EFAULT;
	}
	if (old) {
		old->guest_phys_addr = r->guest_phys_addr; /* move */
		old->flags = r->flags;
		return 0;
	}
	if (MK_GROW(vm->slots, vm->cap_slots, vm->nr_slots + 1))
		return -ENOMEM;
	vm->slots[vm->nr_slots++] = *r;
	return 0;
}

void *mk_gpa_ptr(struct mock_kvm *m, struct mk_vm *vm, uint64_t gpa, uint64_t len)
{
	if (!vm || gpa + len < gpa)
		return NULL;
	for (size_t i = 0; i < vm->nr_slots; i++) {
		const struct kvm_userspace_memory_region *s = &vm->slots[i];
		if (gpa < s->guest_phys_addr || gpa + len > s->guest_phys_addr + s->memory_size)
			continue;
		uint64_t hva = s->userspace_addr + (gpa - s->guest_phys_addr);
		/* the VMM may have unmapped it since: never touch a stale address */
		if (!mk_map_find_range(m, hva, len ? len : 1))
			return NULL;
		return (void *)(uintptr_t)hva;
	}
	return NULL;
}

/* ---- vGIC ---- */

/* vgic_v3_check_base(): dist and the redistributors of nr_vcpus vCPUs inside the IPA
 * space, without wrapping, not overlapping each other. */
bool mk_vgic_check_base(struct mk_vm *vm, size_t nr_vcpus)
{
	const struct mk_vgic *g = &vm->vgic;
	uint64_t rsize = (uint64_t)nr_vcpus * MOCK_KVM_VGIC_REDIST_SIZE;

	if (g->dist_set && g->dist + MOCK_KVM_VGIC_DIST_SIZE < g->dist)
		return false;
	if (g->redist_set && (g->redist + rsize < g->redist || g->redist + rsize > mk_ipa_size(vm)))
		return false;
	if (g->dist_set && g->redist_set &&
	    mk_ranges_overlap(g->dist, MOCK_KVM_VGIC_DIST_SIZE, g->redist, rsize))
		return false;
	return true;
}

static bool mk_any_vcpu(struct mk_vm *vm, bool ran, bool in_run)
{
	for (size_t i = 0; i < vm->nr_vcpus; i++)
		if ((ran && vm->vcpus[i]->ran) || (in_run && vm->vcpus[i]->in_run))
			return true;
	return false;
}

static int mk_create_device(struct mock_kvm *m, struct mk_vm *vm, struct kvm_create_device *cd)
{
	if (!cd)
		return -EFAULT;
	if (cd->type != KVM_DEV_TYPE_ARM_VGIC_V3 || !mk_get_cap(m, KVM_CAP_IRQCHIP))
		return -ENODEV;
	if (cd->flags & KVM_CREATE_DEVICE_TEST)
		return 0;
	if (vm->vgic.created)
		return -EEXIST;
	/* kvm_vgic_create(): every vCPU mutex must be taken, and none may have run */
	if (mk_any_vcpu(vm, true, true))
		return -EBUSY;
	int fd = mk_fd_alloc(m, MOCK_KVM_FD_DEVICE, vm, NULL);
	if (fd < 0)
		return fd;
	vm->refs++;
	vm->vgic.created = true;
	vm->vgic.fd = fd;
	cd->fd = (uint32_t)fd;
	return 0;
}

static int mk_vgic_addr(struct mk_vm *vm, unsigned long req, const struct kvm_device_attr *a)
{
	struct mk_vgic *g = &vm->vgic;
	uint64_t *uaddr = (uint64_t *)(uintptr_t)a->addr;
	bool dist = a->attr == A64_KVM_VGIC_V3_ADDR_TYPE_DIST;

	if (a->attr != A64_KVM_VGIC_V3_ADDR_TYPE_DIST && a->attr != A64_KVM_VGIC_V3_ADDR_TYPE_REDIST)
		return -ENXIO; /* mock: REDIST_REGION and v2 types are not modelled */
	if (req == KVM_HAS_DEVICE_ATTR)
		return 0;
	if (!uaddr)
		return -EFAULT;
	if (req == KVM_GET_DEVICE_ATTR) {
		bool set = dist ? g->dist_set : g->redist_set;
		*uaddr = set ? (dist ? g->dist : g->redist) : ~0ULL;
		return 0;
	}
	uint64_t addr = *uaddr;
	if (dist ? g->dist_set : g->redist_set)
		return -EEXIST;
	if (addr & (MK_VGIC_ALIGN - 1))
		return -EINVAL;
	if (dist) {
		if (addr + MOCK_KVM_VGIC_DIST_SIZE < addr)
			return -EINVAL;
		if (addr + MOCK_KVM_VGIC_DIST_SIZE > mk_ipa_size(vm))
			return -E2BIG;
		g->dist = addr;
		g->dist_set = true;
		return 0;
	}
	if (addr + MOCK_KVM_VGIC_REDIST_SIZE < addr)
		return -EINVAL;
	if (addr >= mk_ipa_size(vm))
		return -E2BIG;
	/* existing vCPUs get their redistributors now: vgic_v3_check_base() */
	g->redist = addr;
	g->redist_set = true;
	if (vm->nr_vcpus && !mk_vgic_check_base(vm, vm->nr_vcpus)) {
		g->redist_set = false;
		return -EINVAL;
	}
	return 0;
}

static int mk_vgic_nr_irqs(struct mk_vm *vm, unsigned long req, const struct kvm_device_attr *a)
{
	struct mk_vgic *g = &vm->vgic;
	uint32_t *uaddr = (uint32_t *)(uintptr_t)a->addr;

	if (req == KVM_HAS_DEVICE_ATTR)
		return 0;
	if (!uaddr)
		return -EFAULT;
	if (req == KVM_GET_DEVICE_ATTR) {
		*uaddr = g->nr_irqs ? g->nr_irqs : MK_VGIC_NR_PRIVATE;
		return 0;
	}
	uint32_t val = *uaddr;
	if (val < MK_VGIC_NR_PRIVATE + 32 || val > MK_VGIC_MAX_RESERVED || (val & 31))
		return -EINVAL;
	if (g->ready || g->nr_irqs)
		return -EBUSY;
	g->nr_irqs = val;
	g->nr_irqs_set = true;
	return 0;
}

static int mk_vgic_ctrl(struct mk_vm *vm, unsigned long req, const struct kvm_device_attr *a)
{
	struct mk_vgic *g = &vm->vgic;

	if (a->attr != A64_KVM_DEV_ARM_VGIC_CTRL_INIT || req == KVM_GET_DEVICE_ATTR)
		return -ENXIO;
	if (req == KVM_HAS_DEVICE_ATTR)
		return 0;
	if (g->initialised)
		return 0;
	if (!g->nr_irqs)
		g->nr_irqs = MOCK_KVM_DEFAULT_NR_IRQS;
	g->initialised = true;
	return 0;
}

int mk_device_ioctl(struct mock_kvm *m, struct mk_vm *vm, unsigned long req, unsigned long arg)
{
	const struct kvm_device_attr *a = (const struct kvm_device_attr *)(uintptr_t)arg;

	(void)m;
	if (req != KVM_SET_DEVICE_ATTR && req != KVM_GET_DEVICE_ATTR && req != KVM_HAS_DEVICE_ATTR)
		return -ENOTTY;
	if (!a)
		return -EFAULT;
	switch (a->group) {
	case A64_KVM_DEV_ARM_VGIC_GRP_ADDR:
		return mk_vgic_addr(vm, req, a);
	case A64_KVM_DEV_ARM_VGIC_GRP_NR_IRQS:
		return mk_vgic_nr_irqs(vm, req, a);
	case A64_KVM_DEV_ARM_VGIC_GRP_CTRL:
		return mk_vgic_ctrl(vm, req, a);
	default:
		return -ENXIO; /* mock: register groups are not modelled */
	}
}

/* kvm_vgic_map_resources() at the first KVM_RUN of any vCPU */
int mk_vm_first_run(struct mock_kvm *m, struct mk_vm *vm)
{
	struct mk_vgic *g = &vm->vgic;

	if (!g->created || g->ready)
		return 0;
	if (!g->redist_set)
		return -ENXIO;
	if (!g->dist_set)
		return -ENXIO;
	if (!mk_vgic_check_base(vm, vm->nr_vcpus))
		return -EINVAL;
	if (!g->initialised)
		return -EBUSY;
	g->ready = true;
	uint64_t rsize = vm->nr_vcpus * MOCK_KVM_VGIC_REDIST_SIZE;
	for (size_t i = 0; i < vm->nr_slots; i++) {
		const struct kvm_userspace_memory_region *s = &vm->slots[i];
		if (mk_ranges_overlap(g->dist, MOCK_KVM_VGIC_DIST_SIZE, s->guest_phys_addr,
				      s->memory_size) ||
		    mk_ranges_overlap(g->redist, rsize, s->guest_phys_addr, s->memory_size))
			mk_violation(m, "vGIC frames overlap RAM slot %u", s->slot);
	}
	return 0;
}

/* ---- interrupts ---- */

void mk_irq_record(struct mock_kvm *m, uint32_t raw, uint32_t type, uint32_t vcpu_idx,
		   uint32_t intid, int level, bool irqfd)
{
	if (MK_GROW(m->irq_events, m->cap_irq_events, m->nr_irq_events + 1))
		return;
	struct mock_kvm_irq_event *e = &m->irq_events[m->nr_irq_events++];
	e->raw = raw;
	e->type = type;
	e->vcpu_idx = vcpu_idx;
	e->intid = intid;
	e->level = level;
	e->from_irqfd = irqfd;
}

static int mk_irq_line(struct mock_kvm *m, struct mk_vm *vm, const struct kvm_irq_level *l)
{
	if (!l)
		return -EFAULT;
	uint32_t irq = l->irq;
	uint32_t type = (irq >> A64_KVM_ARM_IRQ_TYPE_SHIFT) & 0xf;
	uint32_t idx = ((irq >> 16) & 0xff) + ((irq >> 28) & 0xf) * 256;
	uint32_t num = irq & 0xffff;
	int level = l->level != 0;
	bool vgic = vm->vgic.created;

	switch (type) {
	case 0: /* KVM_ARM_IRQ_TYPE_CPU: userspace irqchip only */
		if (vgic)
			return -ENXIO;
		if (idx >= vm->nr_vcpus || num > 1)
			return -EINVAL;
		break;
	case A64_KVM_ARM_IRQ_TYPE_PPI:
		if (!vgic)
			return -ENXIO;
		if (idx >= vm->nr_vcpus || num < 16 || num >= MK_VGIC_NR_PRIVATE)
			return -EINVAL;
		if (!vm->vgic.initialised)
			return -EBUSY;
		if (level)
			vm->vcpus[idx]->ppi_level |= 1U << num;
		else
			vm->vcpus[idx]->ppi_level &= ~(1U << num);
		break;
	case A64_KVM_ARM_IRQ_TYPE_SPI:
		if (!vgic)
			return -ENXIO;
		if (num < MK_VGIC_NR_PRIVATE)
			return -EINVAL;
		if (!vm->vgic.initialised)
			return -EBUSY;
		if (num >= vm->vgic.nr_irqs)
			return -EINVAL;
		vm->spi_level[num] = (uint8_t)level;
		break;
	default:
		return -EINVAL;
	}
	mk_irq_record(m, irq, type, idx, num, level, false);
	return 0;
}

static int mk_irqfd(struct mock_kvm *m, struct mk_vm *vm, const struct kvm_irqfd *a)
{
	int r;

	if (!a)
		return -EFAULT;
	if (!mk_get_cap(m, KVM_CAP_IRQFD))
		return -EINVAL;
	if (a->flags & ~(uint32_t)(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE))
		return -EINVAL;
	if (a->flags & KVM_IRQFD_FLAG_DEASSIGN) {
		r = mk_eventfd_check(m, (int)a->fd);
		if (r)
			return r;
		for (size_t i = 0; i < vm->nr_irqfds; i++) {
			if (vm->irqfds[i].fd == (int)a->fd && vm->irqfds[i].gsi == a->gsi) {
				memmove(&vm->irqfds[i], &vm->irqfds[i + 1],
					(vm->nr_irqfds - i - 1) * sizeof(vm->irqfds[0]));
				vm->nr_irqfds--;
				break;
			}
		}
		return 0;
	}
	if (!vm->vgic.initialised)
		return -EAGAIN;
	r = mk_eventfd_check(m, (int)a->fd);
	if (r)
		return r;
	if (a->flags & KVM_IRQFD_FLAG_RESAMPLE) {
		r = mk_eventfd_check(m, (int)a->resamplefd);
		if (r)
			return r;
	}
	for (size_t i = 0; i < vm->nr_irqfds; i++)
		if (vm->irqfds[i].fd == (int)a->fd)
			return -EBUSY;
	if (MK_GROW(vm->irqfds, vm->cap_irqfds, vm->nr_irqfds + 1))
		return -ENOMEM;
	struct mk_irqfd *e = &vm->irqfds[vm->nr_irqfds++];
	e->fd = (int)a->fd;
	e->resamplefd = (a->flags & KVM_IRQFD_FLAG_RESAMPLE) ? (int)a->resamplefd : -1;
	e->gsi = a->gsi;
	e->flags = a->flags;
	return 0;
}

static uint64_t mk_le(const uint8_t *p, uint32_t len)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < len && i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t mk_trunc(uint64_t v, uint32_t len)
{
	return len >= 8 ? v : v & ((1ULL << (8 * len)) - 1);
}

static int mk_ioeventfd(struct mock_kvm *m, struct mk_vm *vm, const struct kvm_ioeventfd *a)
{
	if (!a)
		return -EFAULT;
	if (!mk_get_cap(m, KVM_CAP_IOEVENTFD))
		return -EINVAL;
	if (a->flags & ~(uint32_t)MK_IOEVENTFD_VALID)
		return -EINVAL;
	if (a->len != 0 && a->len != 1 && a->len != 2 && a->len != 4 && a->len != 8)
		return -EINVAL;
	if (a->addr + a->len < a->addr)
		return -EINVAL;
	if (!a->len && (a->flags & KVM_IOEVENTFD_FLAG_DATAMATCH))
		return -EINVAL;
	int r = mk_eventfd_check(m, a->fd);
	if (r)
		return r;

	uint32_t bus = a->flags & MK_IOEVENTFD_BUS;
	bool wild = !(a->flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
	uint64_t dm = wild ? 0 : mk_trunc(a->datamatch, a->len);

	if (a->flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
		for (size_t i = 0; i < vm->nr_ioeventfds; i++) {
			struct mk_ioeventfd *p = &vm->ioeventfds[i];
			bool pwild = !(p->flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
			if ((p->flags & MK_IOEVENTFD_BUS) != bus || p->fd != a->fd ||
			    p->addr != a->addr || p->len != a->len || pwild != wild ||
			    (!wild && p->datamatch != dm))
				continue;
			memmove(p, p + 1, (vm->nr_ioeventfds - i - 1) * sizeof(*p));
			vm->nr_ioeventfds--;
			return 0;
		}
		return -ENOENT;
	}
	for (size_t i = 0; i < vm->nr_ioeventfds; i++) {
		struct mk_ioeventfd *p = &vm->ioeventfds[i];
		bool pwild = !(p->flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
		if ((p->flags & MK_IOEVENTFD_BUS) == bus && p->addr == a->addr &&
		    (!p->len || !a->len ||
		     (p->len == a->len && (pwild || wild || p->datamatch == dm))))
			return -EEXIST;
	}
	if (vm->nr_ioeventfds >= MK_NR_IOBUS_DEVS)
		return -ENOSPC;
	if (MK_GROW(vm->ioeventfds, vm->cap_ioeventfds, vm->nr_ioeventfds + 1))
		return -ENOMEM;
	struct mk_ioeventfd *e = &vm->ioeventfds[vm->nr_ioeventfds++];
	e->addr = a->addr;
	e->len = a->len;
	e->fd = a->fd;
	e->flags = a->flags & (KVM_IOEVENTFD_FLAG_DATAMATCH | MK_IOEVENTFD_BUS);
	e->datamatch = dm;
	e->hits = 0;
	return 0;
}

/* The MMIO-bus ioeventfd a guest write would signal (ioeventfd_in_range()), or NULL. */
struct mk_ioeventfd *mk_ioeventfd_match(struct mk_vm *vm, uint64_t addr, uint32_t len,
					const uint8_t *data)
{
	if (!vm->alive)
		return NULL;
	for (size_t i = 0; i < vm->nr_ioeventfds; i++) {
		struct mk_ioeventfd *p = &vm->ioeventfds[i];
		if ((p->flags & MK_IOEVENTFD_BUS) || p->addr != addr)
			continue;
		if (!p->len)
			return p;
		if (p->len != len)
			continue;
		if (!(p->flags & KVM_IOEVENTFD_FLAG_DATAMATCH) || p->datamatch == mk_le(data, len))
			return p;
	}
	return NULL;
}

int mk_vm_ioctl(struct mock_kvm *m, struct mk_vm *vm, unsigned long req, unsigned long arg)
{
	void *p = (void *)(uintptr_t)arg;

	switch (req) {
	case KVM_CHECK_EXTENSION:
		return mk_get_cap(m, (long)arg);
	case KVM_SET_USER_MEMORY_REGION:
		if (!p)
			return -EFAULT;
		return mk_set_region(m, vm, p);
	case KVM_CREATE_VCPU:
		return mk_vcpu_create(m, vm, arg);
	case A64_KVM_ARM_PREFERRED_TARGET: {
		struct a64_kvm_vcpu_init *init = p;
		if (!init)
			return -EFAULT;
		memset(init, 0, sizeof(*init));
		init->target = m->target;
		return 0;
	}
	case KVM_CREATE_DEVICE:
		return mk_create_device(m, vm, p);
	case KVM_IRQ_LINE:
		return mk_irq_line(m, vm, p);
	case KVM_IRQFD:
		return mk_irqfd(m, vm, p);
	case KVM_IOEVENTFD:
		return mk_ioeventfd(m, vm, p);
	default:
		return -EINVAL;
	}
}

/* ---- queries ---- */

int mock_kvm_vm(struct mock_kvm *m, struct mock_kvm_vm_info *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	memset(out, 0, sizeof(*out));
	if (m->vm) {
		out->created = true;
		out->alive = m->vm->alive;
		out->type = m->vm->type;
		out->ipa_bits = m->vm->ipa_bits;
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_nr_slots(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	int n = m->vm ? (int)m->vm->nr_slots : 0;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_slot(struct mock_kvm *m, uint32_t slot, struct kvm_userspace_memory_region *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	struct kvm_userspace_memory_region *s = m->vm ? mk_slot_find(m->vm, slot) : NULL;
	if (s) {
		*out = *s;
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_guest_read(struct mock_kvm *m, uint64_t gpa, void *buf, size_t len)
{
	pthread_mutex_lock(&m->lock);
	void *p = mk_gpa_ptr(m, m->vm, gpa, len);
	if (p)
		memcpy(buf, p, len);
	pthread_mutex_unlock(&m->lock);
	return p ? 0 : -EFAULT;
}

int mock_kvm_guest_write(struct mock_kvm *m, uint64_t gpa, const void *buf, size_t len)
{
	pthread_mutex_lock(&m->lock);
	void *p = mk_gpa_ptr(m, m->vm, gpa, len);
	if (p)
		memcpy(p, buf, len);
	pthread_mutex_unlock(&m->lock);
	return p ? 0 : -EFAULT;
}

int mock_kvm_vgic(struct mock_kvm *m, struct mock_kvm_vgic_info *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (m->vm) {
		const struct mk_vgic *g = &m->vm->vgic;
		out->created = g->created;
		out->fd = g->fd;
		out->dist_set = g->dist_set;
		out->redist_set = g->redist_set;
		out->dist = g->dist;
		out->redist = g->redist;
		out->nr_irqs_set = g->nr_irqs_set;
		out->nr_irqs = g->nr_irqs;
		out->initialised = g->initialised;
		out->ready = g->ready;
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_irq_level(struct mock_kvm *m, uint32_t intid)
{
	if (intid < MK_VGIC_NR_PRIVATE || intid >= MK_MAX_INTID)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	int r = m->vm ? m->vm->spi_level[intid] : 0;
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_ppi_level(struct mock_kvm *m, unsigned int vcpu_idx, uint32_t intid)
{
	int r = -EINVAL;

	if (intid < 16 || intid >= MK_VGIC_NR_PRIVATE)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (m->vm && vcpu_idx < m->vm->nr_vcpus)
		r = (m->vm->vcpus[vcpu_idx]->ppi_level >> intid) & 1;
	pthread_mutex_unlock(&m->lock);
	return r;
}

size_t mock_kvm_nr_irq_events(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->nr_irq_events;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_irq_event(struct mock_kvm *m, size_t i, struct mock_kvm_irq_event *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	if (i < m->nr_irq_events) {
		*out = m->irq_events[i];
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

unsigned int mock_kvm_count_irq(struct mock_kvm *m, uint32_t intid, int level)
{
	unsigned int n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_irq_events; i++) {
		const struct mock_kvm_irq_event *e = &m->irq_events[i];
		n += e->type != 0 && e->intid == intid && (level < 0 || e->level == level);
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

static void mk_irqfd_out(const struct mk_irqfd *e, struct mock_kvm_irqfd *out)
{
	out->fd = e->fd;
	out->resamplefd = e->resamplefd;
	out->gsi = e->gsi;
	out->flags = e->flags;
}

size_t mock_kvm_nr_irqfds(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->vm ? m->vm->nr_irqfds : 0;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_irqfd(struct mock_kvm *m, size_t i, struct mock_kvm_irqfd *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	if (m->vm && i < m->vm->nr_irqfds) {
		mk_irqfd_out(&m->vm->irqfds[i], out);
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_irqfd_by_gsi(struct mock_kvm *m, uint32_t gsi, struct mock_kvm_irqfd *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; m->vm && i < m->vm->nr_irqfds; i++) {
		if (m->vm->irqfds[i].gsi == gsi) {
			mk_irqfd_out(&m->vm->irqfds[i], out);
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int mock_kvm_irqfd_poll(struct mock_kvm *m)
{
	int n = 0;

	pthread_mutex_lock(&m->lock);
	struct mk_vm *vm = m->vm;
	for (size_t i = 0; vm && vm->alive && i < vm->nr_irqfds; i++) {
		const struct mk_irqfd *e = &vm->irqfds[i];
		struct pollfd pfd = { .fd = e->fd, .events = POLLIN };
		uint64_t cnt;
		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
			continue;
		if (read(e->fd, &cnt, sizeof(cnt)) != (ssize_t)sizeof(cnt))
			continue;
		uint32_t intid = e->gsi + MK_VGIC_NR_PRIVATE;
		if (!vm->vgic.initialised || intid >= vm->vgic.nr_irqs)
			continue; /* no routing entry for that gsi: dropped */
		mk_irq_record(m, 0, A64_KVM_ARM_IRQ_TYPE_SPI, 0, intid, 1, true);
		if (e->resamplefd >= 0) {
			vm->spi_level[intid] = 1;
		} else {
			mk_irq_record(m, 0, A64_KVM_ARM_IRQ_TYPE_SPI, 0, intid, 0, true);
			vm->spi_level[intid] = 0;
		}
		n++;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_irqfd_resample(struct mock_kvm *m, uint32_t gsi)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	struct mk_vm *vm = m->vm;
	for (size_t i = 0; vm && i < vm->nr_irqfds; i++) {
		const struct mk_irqfd *e = &vm->irqfds[i];
		uint64_t one = 1;
		if (e->gsi != gsi || e->resamplefd < 0)
			continue;
		uint32_t intid = gsi + MK_VGIC_NR_PRIVATE;
		if (intid < MK_MAX_INTID) {
			vm->spi_level[intid] = 0;
			mk_irq_record(m, 0, A64_KVM_ARM_IRQ_TYPE_SPI, 0, intid, 0, true);
		}
		r = write(e->resamplefd, &one, sizeof(one)) == (ssize_t)sizeof(one) ? 0 : -EIO;
		break;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

size_t mock_kvm_nr_ioeventfds(struct mock_kvm *m)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->vm ? m->vm->nr_ioeventfds : 0;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int mock_kvm_ioeventfd(struct mock_kvm *m, size_t i, struct mock_kvm_ioeventfd *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&m->lock);
	if (m->vm && i < m->vm->nr_ioeventfds) {
		const struct mk_ioeventfd *e = &m->vm->ioeventfds[i];
		out->addr = e->addr;
		out->len = e->len;
		out->fd = e->fd;
		out->flags = e->flags;
		out->datamatch = e->datamatch;
		out->hits = e->hits;
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}
