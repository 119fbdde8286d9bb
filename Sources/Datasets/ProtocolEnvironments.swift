// Which domains train and which are held out (docs/data.md §6, Environments):
// - leave-one-domain-out (PACS, OfficeHome, the built-in benchmarks): one run per test domain;
//   DomainBed also allows several test domains in one run (`--test_envs 0 1`);
// - leave-one-group-out (DomainNet, following Yu et al. 2024b as FQAT does): groups
//   {clipart, infograph}, {painting, quickdraw}, {real, sketch}; one run per group, trained on the
//   other four domains, each test domain reported separately.
// Domain indices are positions in the data set (DomainBed's environment indices).
import Foundation

/// The training and test domains of one run.
public struct EnvironmentAssignment: Codable, Equatable, Sendable {
    /// Held-out domains, ascending.
    public var testDomains: [Int]
    /// Every other domain, ascending.
    public var trainingDomains: [Int]

    /// Holds out `testDomains` of `domainCount` domains.
    public init(testDomains: [Int], domainCount: Int) throws {
        let test = Array(Set(testDomains)).sorted()
        if let bad = test.first(where: { $0 < 0 || $0 >= domainCount }) {
            throw DatasetError.invalidOption(name: "test domain", value: String(bad), expected: "an index in 0..<\(domainCount)")
        }
        let training = (0..<domainCount).filter { !test.contains($0) }
        guard !training.isEmpty else {
            throw DatasetError.invalidOption(name: "test domains", value: test.map(String.init).joined(separator: ","),
                                             expected: "at least one domain left for training")
        }
        self.testDomains = test
        self.trainingDomains = training
    }

    /// Holds out the domains called `names` in `dataset` (unknown names throw, listing the domains).
    public init(testDomainNames names: [String], in dataset: DomainDataset) throws {
        let indices = try names.map { try dataset.domainIndex(named: $0) }
        try self.init(testDomains: indices, domainCount: dataset.domains.count)
    }

    /// One assignment per domain, each holding out that domain.
    public static func leaveOneDomainOut(domainCount: Int) -> [EnvironmentAssignment] {
        (0..<domainCount).compactMap { try? EnvironmentAssignment(testDomains: [$0], domainCount: domainCount) }
    }

    /// One assignment per group of domain names; groups must be disjoint and name real domains.
    public static func leaveOneGroupOut(groups: [[String]], in dataset: DomainDataset) throws -> [EnvironmentAssignment] {
        var seen = Set<Int>()
        return try groups.map { group in
            guard !group.isEmpty else {
                throw DatasetError.invalidOption(name: "groups", value: "[]", expected: "non-empty groups of domain names")
            }
            let indices = try group.map { try dataset.domainIndex(named: $0) }
            for i in indices {
                guard seen.insert(i).inserted else {
                    throw DatasetError.invalidOption(name: "groups", value: dataset.domains[i].name, expected: "each domain in at most one group")
                }
            }
            return try EnvironmentAssignment(testDomains: indices, domainCount: dataset.domains.count)
        }
    }

    /// DomainNet's three groups as assignments (the data set must have those six domains).
    public static func domainNetGroups(in dataset: DomainDataset) throws -> [EnvironmentAssignment] {
        try leaveOneGroupOut(groups: DomainBedFolders.domainNetGroups, in: dataset)
    }
}
