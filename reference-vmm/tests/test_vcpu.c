/* Unit tests for core/vcpu.c: the KVM_RUN loop driven by scripted mock exits —
 * MMIO dispatch (reads return device data, writes reach devices, unmapped
 * accesses are harmless), system events, KVM errors, stopping blocked vCPUs. */
#include "arch/aarch64/layout.h"
#include "devices/pl011.h"
#include "vmm_fixture.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static int run_script(struct vmm_fixture *f)
{
	return vmm_run(f->vmm);
}

static void poweroff_exits_zero(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 2);
	assert_int_equal(fixture_create(&f), 0);
	/* vCPU 1 stays blocked (powered off): it must be kicked out */
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run_script(&f), VMM_EXIT_POWEROFF);
	fixture_teardown(&f);
}

static void reset_exits_three(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_RESET);
	assert_int_equal(run_script(&f), VMM_EXIT_RESET);
	fixture_teardown(&f);
}

static void crash_event_is_failure(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_CRASH);
	assert_int_equal(run_script(&f), VMM_EXIT_FAILURE);
	fixture_teardown(&f);
}

static void event_on_secondary_vcpu_stops_all(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 4);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_system_event(f.mock, 3, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run_script(&f), VMM_EXIT_POWEROFF);
	fixture_teardown(&f);
}

static void kvm_run_error_is_failure(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 2);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_errno(f.mock, 0, -EFAULT);
	assert_int_equal(run_script(&f), VMM_EXIT_FAILURE);
	fixture_teardown(&f);
}

static void eintr_is_retried(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_errno(f.mock, 0, -EINTR);
	mock_kvm_script_exit_reason(f.mock, 0, KVM_EXIT_INTR);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run_script(&f), VMM_EXIT_POWEROFF);
	assert_int_equal(mock_kvm_script_pending(f.mock, 0), 0);
	fixture_teardown(&f);
}

static void unknown_exit_reason_is_failure(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_exit_reason(f.mock, 0, KVM_EXIT_INTERNAL_ERROR);
	assert_int_equal(run_script(&f), VMM_EXIT_FAILURE);
	fixture_teardown(&f);
}

static void fail_entry_is_failure(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_exit_reason(f.mock, 0, KVM_EXIT_FAIL_ENTRY);
	assert_int_equal(run_script(&f), VMM_EXIT_FAILURE);
	fixture_teardown(&f);
}

static void uart_tx_reaches_console(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	const char *msg = "hi\n";
	for (const char *p = msg; *p; p++)
		mock_kvm_script_mmio_write(f.mock, 0, A64_UART_BASE + PL011_DR, (uint8_t)*p, 4);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run_script(&f), VMM_EXIT_POWEROFF);
	char out[64];
	fixture_console_output(&f, out, sizeof(out));
	assert_string_equal(out, "hi\n");
	fixture_teardown(&f);
}

static void output_without_newline_is_flushed_at_exit(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_mmio_write(f.mock, 0, A64_UART_BASE + PL011_DR, '$', 4);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run_script(&f), VMM_EXIT_POWEROFF);
	char out[64];
	fixture_console_output(&f, out, sizeof(out));
	assert_string_equal(out, "$");
	fixture_teardown(&f);
}

static void mmio_read_returns_device_data(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_mmio_read(f.mock, 0, A64_UART_BASE + PL011_PERIPH_ID0, 4);
	mock_kvm_script_mmio_read(f.mock, 0, A64_UART_BASE + 0xffc, 4);
	mock_kvm_script_mmio_read(f.mock, 0, 0x0c000000, 8); /* nothing there */
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run_script(&f), VMM_EXIT_POWEROFF);
	assert_int_equal(mock_kvm_nr_mmio_reads(f.mock, 0), 3);
	struct mock_kvm_mmio_result r;
	assert_int_equal(mock_kvm_mmio_read_result(f.mock, 0, 0, &r), 0);
	assert_int_equal(r.value, 0x11);
	assert_int_equal(mock_kvm_mmio_read_result(f.mock, 0, 1, &r), 0);
	assert_int_equal(r.value, 0xb1);
	assert_int_equal(mock_kvm_mmio_read_result(f.mock, 0, 2, &r), 0);
	assert_int_equal(r.value, 0);
	fixture_teardown(&f);
}

static void boot_timer_write_is_handled(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	char *logbuf = NULL;
	size_t loglen = 0;
	FILE *log = open_memstream(&logbuf, &loglen);
	assert_non_null(log);
	f.vmm->log.out = log;
	f.vmm->log.level = LOG_INFO;
	mock_kvm_script_mmio_write(f.mock, 0, A64_BOOT_TIMER_BASE, 1, 1);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run_script(&f), VMM_EXIT_POWEROFF);
	fixture_teardown(&f);
	fclose(log);
	assert_non_null(strstr(logbuf, "vmm: info: boot-timer: guest signalled after "));
	assert_non_null(strstr(logbuf, "guest power off (vcpu0)"));
	free(logbuf);
}

/* host input → UART RX FIFO → SPI raised → guest reads the byte */
static void wait_irq_high(struct mock_kvm *m, unsigned int vcpu, void *arg)
{
	(void)vcpu;
	(void)arg;
	for (int i = 0; i < 2000 && mock_kvm_irq_level(m, 32 + A64_UART_SPI) != 1; i++)
		usleep(1000);
}

static void uart_rx_raises_irq_and_delivers(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 1);
	assert_int_equal(fixture_create(&f), 0);
	assert_int_equal(write(f.in_pipe[1], "k", 1), 1);
	mock_kvm_script_mmio_write(f.mock, 0, A64_UART_BASE + PL011_IMSC, PL011_INT_RX, 4);
	mock_kvm_script_call(f.mock, 0, wait_irq_high, NULL);
	mock_kvm_script_mmio_read(f.mock, 0, A64_UART_BASE + PL011_DR, 4);
	mock_kvm_script_system_event(f.mock, 0, KVM_SYSTEM_EVENT_SHUTDOWN);
	assert_int_equal(run_script(&f), VMM_EXIT_POWEROFF);
	struct mock_kvm_mmio_result r;
	assert_int_equal(mock_kvm_mmio_read_result(f.mock, 0, 0, &r), 0);
	assert_int_equal(r.value, 'k');
	assert_true(mock_kvm_count_irq(f.mock, 32 + A64_UART_SPI, 1) >= 1);
	/* reading the only byte drained the FIFO: line lowered again */
	assert_int_equal(mock_kvm_irq_level(f.mock, 32 + A64_UART_SPI), 0);
	fixture_teardown(&f);
}

static void *stop_later(void *arg)
{
	struct vmm *vmm = arg;
	usleep(50 * 1000);
	vmm_request_stop(vmm);
	return NULL;
}

static void request_stop_unblocks_vcpus(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 3);
	assert_int_equal(fixture_create(&f), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stop_later, f.vmm), 0);
	assert_int_equal(run_script(&f), VMM_EXIT_FAILURE);
	pthread_join(t, NULL);
	fixture_teardown(&f);
}

static void sigterm(struct mock_kvm *m, unsigned int vcpu, void *arg)
{
	(void)m;
	(void)vcpu;
	(void)arg;
	kill(getpid(), SIGTERM);
}

static void sigterm_stops_in_order(void **state)
{
	(void)state;
	struct vmm_fixture f;
	fixture_setup(&f, 2);
	assert_int_equal(fixture_create(&f), 0);
	mock_kvm_script_call(f.mock, 0, sigterm, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(run_script(&f), VMM_EXIT_FAILURE);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	/* the mask is restored: SIGTERM is not left blocked or pending */
	sigset_t cur;
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	assert_false(sigismember(&cur, SIGTERM));
	fixture_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(poweroff_exits_zero),
		cmocka_unit_test(reset_exits_three),
		cmocka_unit_test(crash_event_is_failure),
		cmocka_unit_test(event_on_secondary_vcpu_stops_all),
		cmocka_unit_test(kvm_run_error_is_failure),
		cmocka_unit_test(eintr_is_retried),
		cmocka_unit_test(unknown_exit_reason_is_failure),
		cmocka_unit_test(fail_entry_is_failure),
		cmocka_unit_test(uart_tx_reaches_console),
		cmocka_unit_test(output_without_newline_is_flushed_at_exit),
		cmocka_unit_test(mmio_read_returns_device_data),
		cmocka_unit_test(boot_timer_write_is_handled),
		cmocka_unit_test(uart_rx_raises_irq_and_delivers),
		cmocka_unit_test(request_stop_unblocks_vcpus),
		cmocka_unit_test(sigterm_stops_in_order),
	};
	return cmocka_run_group_tests_name("vcpu", tests, NULL, NULL);
}
