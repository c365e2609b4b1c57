/* Unit tests for core/virtio_slots.c and core/devices.c against mock KVM:
 * devices from the config appear in the DTB and on the bus, queue kicks use
 * KVM ioeventfds through the event loop (trapped writes without them), bad
 * device input never opens KVM, and nothing leaks across boots. */
#include "arch/aarch64/layout.h"
#include "virtio/mmio.h"
#include "vmm_fixture.h"

#include <errno.h>
#include <libfdt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void add_disk(struct vmm_fixture *f, const char *name, size_t size)
{
	unsigned int i = f->cfg.nr_blocks++;
	char path[160];
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(ftruncate(fileno(fp), (off_t)size), 0);
	fclose(fp);
	f->cfg.blocks[i].path = strdup(path);
}

static void remove_disks(struct vmm_fixture *f)
{
	for (unsigned int i = 0; i < f->cfg.nr_blocks; i++)
		unlink(f->cfg.blocks[i].path);
}

static void devices_appear_in_dtb_in_order(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	add_disk(&f, "a.img", 1 << 20);
	add_disk(&f, "b.img", 1 << 20);
	assert_int_equal(fixture_create(&f), 0);
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(f.mock, 0, &v), 0);
	static uint8_t fdt[A64_FDT_BUF_SIZE];
	assert_int_equal(mock_kvm_guest_read(f.mock, v.x[0], fdt, sizeof(fdt)), 0);
	int node, n = 0;
	uint64_t last = 0;
	fdt_for_each_subnode(node, fdt, 0) {
		const char *name = fdt_get_name(fdt, node, NULL);
		if (strncmp(name, "virtio_mmio@", 12) != 0)
			continue;
		uint64_t base = strtoull(name + 12, NULL, 16);
		assert_true(base > last); /* listed in slot order: vda is the first --block */
		last = base;
		assert_string_equal(fdt_getprop(fdt, node, "compatible", NULL), "virtio,mmio");
		n++;
	}
	assert_int_equal(n, 2);
	fixture_teardown(&f);
	remove_disks(&f);
}

static void magic_reads_through_the_bus(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	add_disk(&f, "a.img", 1 << 20);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_mmio_read(f.mock, 0, A64_VIRTIO_MMIO_BASE + VIRTIO_MMIO_MAGIC_VALUE, 4);
	mock_kvm_script_mmio_read(f.mock, 0, A64_VIRTIO_MMIO_BASE + VIRTIO_MMIO_DEVICE_ID, 4);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(vmm_run(f.vmm), VMM_EXIT_POWEROFF);
	struct mock_kvm_mmio_result r;
	assert_int_equal(mock_kvm_mmio_read_result(f.mock, 0, 0, &r), 0);
	assert_int_equal(r.value, VIRTIO_MMIO_MAGIC);
	assert_int_equal(mock_kvm_mmio_read_result(f.mock, 0, 1, &r), 0);
	assert_int_equal(r.value, VIRTIO_ID_BLOCK);
	fixture_teardown(&f);
	remove_disks(&f);
}

static void ioeventfd_per_queue(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	add_disk(&f, "a.img", 1 << 20);
	f.cfg.vsock.enabled = true;
	f.cfg.vsock.guest_cid = 3;
	char uds[160];
	snprintf(uds, sizeof(uds), "%s/v.sock", f.dir);
	f.cfg.vsock.uds_path = strdup(uds);
	assert_int_equal(fixture_create(&f), 0);
	/* blk: 1 queue, vsock: 3 queues */
	assert_int_equal(mock_kvm_nr_ioeventfds(f.mock), 4);
	struct mock_kvm_ioeventfd io;
	assert_int_equal(mock_kvm_ioeventfd(f.mock, 0, &io), 0);
	assert_int_equal(io.addr, A64_VIRTIO_MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY);
	assert_int_equal(io.len, 4);
	assert_int_equal(io.datamatch, 0);
	assert_int_equal(mock_kvm_ioeventfd(f.mock, 3, &io), 0);
	assert_int_equal(io.addr,
			 A64_VIRTIO_MMIO_BASE + A64_VIRTIO_MMIO_STRIDE + VIRTIO_MMIO_QUEUE_NOTIFY);
	assert_int_equal(io.datamatch, 2);
	fixture_teardown(&f);
	remove_disks(&f);
}

/* a guest kick matching the ioeventfd is absorbed by KVM: no MMIO exit, the
 * event loop sees the eventfd instead (observable: the write is not trapped) */
static void kick_goes_through_ioeventfd(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	add_disk(&f, "a.img", 1 << 20);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_mmio_write(f.mock, 0, A64_VIRTIO_MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0,
				   4);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(vmm_run(f.vmm), VMM_EXIT_POWEROFF);
	struct mock_kvm_ioeventfd io;
	assert_int_equal(mock_kvm_ioeventfd(f.mock, 0, &io), 0);
	assert_int_equal(io.hits, 1);
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(f.mock, 0, &v), 0);
	assert_int_equal(v.exits, 1); /* only the power-off exit reached the VMM */
	fixture_teardown(&f);
	remove_disks(&f);
}

static void no_ioeventfd_falls_back_to_traps(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	add_disk(&f, "a.img", 1 << 20);
	mock_kvm_set_cap(f.mock, KVM_CAP_IOEVENTFD, 0);
	assert_int_equal(fixture_create(&f), 0);
	assert_int_equal(mock_kvm_nr_ioeventfds(f.mock), 0);
	mock_kvm_script_mmio_write(f.mock, 0, A64_VIRTIO_MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0,
				   4);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(vmm_run(f.vmm), VMM_EXIT_POWEROFF);
	struct mock_kvm_vcpu_info v;
	assert_int_equal(mock_kvm_vcpu(f.mock, 0, &v), 0);
	assert_int_equal(v.exits, 2); /* the kick was trapped */
	fixture_teardown(&f);
	remove_disks(&f);
}

static void missing_disk_never_opens_kvm(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	f.cfg.blocks[0].path = strdup("/nonexistent/disk.img");
	f.cfg.nr_blocks = 1;
	assert_int_equal(fixture_create(&f), -EINVAL);
	assert_non_null(strstr(f.err, "/nonexistent/disk.img"));
	assert_int_equal(mock_kvm_count_calls(f.mock, MOCK_KVM_OP_OPEN), 0);
	fixture_teardown(&f);
}

static void reboot_rebuilds_transports(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	add_disk(&f, "a.img", 1 << 20);
	f.cfg.on_reset = VMM_RESET_REBOOT;
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_RESET);
	mock_kvm_script_mmio_read(f.mock, 0, A64_VIRTIO_MMIO_BASE + VIRTIO_MMIO_MAGIC_VALUE, 4);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(vmm_run(f.vmm), VMM_EXIT_POWEROFF);
	struct mock_kvm_mmio_result r;
	assert_int_equal(mock_kvm_mmio_read_result(f.mock, 0, 0, &r), 0);
	assert_int_equal(r.value, VIRTIO_MMIO_MAGIC);
	assert_int_equal(mock_kvm_nr_ioeventfds(f.mock), 1); /* old VM's are gone */
	fixture_teardown(&f);
	remove_disks(&f);
}

/* level semantics over an irqfd: assert = signal; the guest's EOI (resample)
 * re-asserts while the transport still has an interrupt pending */
static void interrupt_through_irqfd_with_resample(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	add_disk(&f, "a.img", 1 << 20);
	mock_kvm_set_cap(f.mock, KVM_CAP_IRQFD_RESAMPLE, 1);
	assert_int_equal(fixture_create(&f), 0);
	unsigned int gsi = A64_VIRTIO_SPI_BASE;
	struct mock_kvm_irqfd kf;
	assert_int_equal(mock_kvm_irqfd_by_gsi(f.mock, gsi, &kf), 0);
	assert_true(kf.resamplefd >= 0);
	struct virtio_transport *t = f.vmm->virtio[0].t;
	assert_int_equal(irq_line_set(&t->irq, 1), 0);
	assert_int_equal(mock_kvm_irqfd_poll(f.mock), 1);
	assert_int_equal(mock_kvm_irq_level(f.mock, 32 + gsi), 1);
	assert_int_equal(mock_kvm_count_calls(f.mock, KVM_IRQ_LINE), 0);
	/* EOI with the interrupt still pending: the slot signals the irqfd again */
	pthread_mutex_lock(&t->lock);
	t->int_status = 1;
	pthread_mutex_unlock(&t->lock);
	assert_int_equal(event_loop_start(&f.vmm->loop), 0);
	assert_int_equal(mock_kvm_irqfd_resample(f.mock, gsi), 0);
	int injected = 0;
	for (int i = 0; i < 1000 && !injected; i++) {
		injected = mock_kvm_irqfd_poll(f.mock);
		if (!injected)
			usleep(1000);
	}
	assert_int_equal(injected, 1);
	/* EOI with nothing pending: no new assertion */
	pthread_mutex_lock(&t->lock);
	t->int_status = 0;
	pthread_mutex_unlock(&t->lock);
	assert_int_equal(mock_kvm_irqfd_resample(f.mock, gsi), 0);
	usleep(30 * 1000);
	assert_int_equal(mock_kvm_irqfd_poll(f.mock), 0);
	event_loop_stop(&f.vmm->loop);
	fixture_teardown(&f);
	remove_disks(&f);
}

static void no_irqfd_drives_the_line(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	add_disk(&f, "a.img", 1 << 20);
	mock_kvm_set_cap(f.mock, KVM_CAP_IRQFD, 0);
	assert_int_equal(fixture_create(&f), 0);
	assert_int_equal(mock_kvm_nr_irqfds(f.mock), 0);
	struct virtio_transport *t = f.vmm->virtio[0].t;
	assert_int_equal(irq_line_set(&t->irq, 1), 0);
	assert_int_equal(mock_kvm_irq_level(f.mock, 32 + A64_VIRTIO_SPI_BASE), 1);
	assert_int_equal(irq_line_set(&t->irq, 0), 0);
	assert_int_equal(mock_kvm_irq_level(f.mock, 32 + A64_VIRTIO_SPI_BASE), 0);
	fixture_teardown(&f);
	remove_disks(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(devices_appear_in_dtb_in_order),
		cmocka_unit_test(magic_reads_through_the_bus),
		cmocka_unit_test(ioeventfd_per_queue),
		cmocka_unit_test(kick_goes_through_ioeventfd),
		cmocka_unit_test(no_ioeventfd_falls_back_to_traps),
		cmocka_unit_test(missing_disk_never_opens_kvm),
		cmocka_unit_test(reboot_rebuilds_transports),
		cmocka_unit_test(interrupt_through_irqfd_with_resample),
		cmocka_unit_test(no_irqfd_drives_the_line),
	};
	return cmocka_run_group_tests_name("virtio_slots", tests, NULL, NULL);
}
