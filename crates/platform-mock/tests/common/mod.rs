//! Shared set-up for the simulated-host tests: one host with ferry loaded, and a guest.

#![allow(dead_code)]

use std::rc::Rc;

use ferry_core::port::{PortConfig, PortIdentity};
use ferry_platform_mock::clock::{HostClock, VirtualTime};
use ferry_platform_mock::driver::Driver;
use ferry_platform_mock::guest::{AckPolicy, GuestAgent};
use ferry_platform_mock::kmcl::{ChannelHandle, Kmcl};
use ferry_platform_mock::platform::{HostServices, SimPlatform};
use ferry_platform_mock::rng::SimRng;
use ferry_platform_mock::vswitch::VSwitch;

pub struct TestHost {
    pub services: Rc<HostServices>,
    pub driver: Rc<Driver>,
}

pub fn host(time: &VirtualTime, offset: u64, first_port: u32) -> TestHost {
    let services = Rc::new(HostServices {
        kmcl: Kmcl::new(),
        vswitch: VSwitch::new(first_port),
        clock: HostClock::new(time.clone(), offset),
    });
    let driver = Rc::new(Driver::new(SimPlatform(Rc::clone(&services))));
    TestHost { services, driver }
}

pub fn nic(n: u8) -> PortIdentity {
    PortIdentity([n; 16])
}

pub struct Vm {
    pub channel: ChannelHandle,
    pub guest: GuestAgent,
}

/// A VM with one port and an open, running channel (statistics deferred if `defer`).
pub fn vm(host: &TestHost, id: u32, defer: bool) -> Vm {
    host.driver
        .set_port_config(nic(id as u8), PortConfig::UNLIMITED);
    host.services
        .vswitch
        .create_port(nic(id as u8), host.driver.as_ref())
        .unwrap();
    let channel = host.driver.offer_channel(id, nic(id as u8), defer);
    let mut guest = GuestAgent::new(id, AckPolicy::default());
    let status = host.services.kmcl.guest_open(channel, host.driver.as_ref());
    assert!(status.is_success());
    guest.set_open(true);
    Vm { channel, guest }
}

pub fn deliver(host: &TestHost, vm: &mut Vm, time: &VirtualTime, rng: &mut SimRng) {
    let items = host.services.kmcl.take_to_guest(vm.channel);
    vm.guest.receive(items, time.now(), rng);
}

pub fn pump(
    host: &TestHost,
    vm: &mut Vm,
    budget: usize,
    time: &VirtualTime,
    rng: &mut SimRng,
) -> ferry_platform_mock::kmcl::PumpResult {
    let result =
        host.services
            .kmcl
            .pump(vm.channel, &mut vm.guest.ring, budget, host.driver.as_ref());
    deliver(host, vm, time, rng);
    result
}

/// Negotiates and subscribes.
pub fn negotiate(host: &TestHost, vm: &mut Vm, time: &VirtualTime, rng: &mut SimRng) {
    while !vm.guest.negotiated() {
        vm.guest.send_request(rng);
        pump(host, vm, 16, time, rng);
        for (channel, id) in host.driver.take_deferred() {
            host.driver.answer_deferred(channel, id);
        }
        deliver(host, vm, time, rng);
    }
}

/// Everything the host and the guest noticed as wrong.
pub fn problems(host: &TestHost, vm: &Vm) -> Vec<String> {
    let mut all = host.services.kmcl.take_violations();
    all.extend(host.services.vswitch.take_violations());
    all.extend(host.driver.take_findings());
    all.extend(vm.guest.ledger.violations.iter().cloned());
    all
}
